/// Text form and rescaling of unscaled decimal values.
public enum DecimalText {
    public static func format(_ unscaled: Int128, scale: Int) -> String {
        let negative = unscaled < 0
        var digits = String(unscaled.magnitude)
        if scale > 0 {
            if digits.count <= scale { digits = String(repeating: "0", count: scale - digits.count + 1) + digits }
            digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -scale))
        }
        return negative ? "-" + digits : digits
    }

    /// The same value at another scale; nil if digits would be lost or the value overflows.
    public static func rescale(_ v: Int128, from: Int, to: Int) -> Int128? {
        if from == to { return v }
        if to > from {
            var r = v
            for _ in from..<to {
                let (m, o) = r.multipliedReportingOverflow(by: 10)
                if o { return nil }
                r = m
            }
            return r
        }
        var r = v
        for _ in to..<from {
            guard r % 10 == 0 else { return nil }
            r /= 10
        }
        return r
    }

    /// The nearest double. One division by an exact power of ten (exact up to 10^22), with the
    /// common case, an unscaled value that fits 64 bits, kept off the slow 128-bit conversion.
    public static func toDouble(_ v: Int128, scale: Int) -> Double {
        let d = Int64(exactly: v).map(Double.init) ?? Double(v)
        guard scale > 0 else { return d }
        return scale < powersOfTen.count ? d / powersOfTen[scale] : d / pow10(scale)
    }

    private static let powersOfTen: [Double] = (0...22).map { pow10($0) }

    private static func pow10(_ n: Int) -> Double {
        var p = 1.0
        for _ in 0..<n { p *= 10 }
        return p
    }
}
