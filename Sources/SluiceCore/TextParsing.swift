#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Parsers from UTF-8 text to typed values, working on raw bytes so that CSV and JSON values are
/// converted without creating a `String` per field. Each returns nil when the text is not a valid
/// value of its type; inference uses that to decide a column's type.
public enum TextParsing {
    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c &- 48 < 10 }

    public static func int64(_ t: UnsafeRawBufferPointer) -> Int64? {
        var i = 0, n = t.count
        guard n > 0 else { return nil }
        while n > 0, t[n - 1] == 32 { n -= 1 }
        while i < n, t[i] == 32 { i += 1 }
        var negative = false
        if i < n, t[i] == 45 || t[i] == 43 { negative = t[i] == 45; i += 1 }
        guard i < n, n - i <= 19 || (n - i <= 20) else { return nil }
        var v: UInt64 = 0
        while i < n {
            let d = t[i] &- 48
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1, !o2 else { return nil }
            v = a
            i += 1
        }
        if negative {
            guard v <= UInt64(Int64.max) + 1 else { return nil }
            return v == UInt64(Int64.max) + 1 ? Int64.min : -Int64(v)
        }
        guard v <= UInt64(Int64.max) else { return nil }
        return Int64(v)
    }

    private static let exactPowers: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { r, _ in r * 10 } }

    /// Decimal floating-point text (`-12.5`, `1e-3`, `NaN`, `inf`). Simple values take an exact fast
    /// path (Clinger: ≤ 15 significant digits and a power of ten ≤ 22); the rest go through `strtod`.
    public static func double(_ t: UnsafeRawBufferPointer) -> Double? {
        let n = t.count
        guard n > 0 else { return nil }
        var i = 0, negative = false
        if t[0] == 45 || t[0] == 43 { negative = t[0] == 45; i = 1 }
        var mantissa: UInt64 = 0, digits = 0, exponent = 0, sawDigit = false
        while i < n, isDigit(t[i]) {
            if digits < 19 { mantissa = mantissa &* 10 &+ UInt64(t[i] &- 48); if mantissa > 0 { digits += 1 } } else { exponent += 1 }
            sawDigit = true; i += 1
        }
        if i < n, t[i] == 46 {
            i += 1
            while i < n, isDigit(t[i]) {
                if digits < 19 { mantissa = mantissa &* 10 &+ UInt64(t[i] &- 48); if mantissa > 0 { digits += 1 }; exponent -= 1 }
                sawDigit = true; i += 1
            }
        }
        if !sawDigit { return special(t) }
        if i < n, t[i] | 0x20 == 101 {
            i += 1
            var eneg = false
            if i < n, t[i] == 45 || t[i] == 43 { eneg = t[i] == 45; i += 1 }
            guard i < n else { return nil }
            var e = 0
            while i < n, isDigit(t[i]) { if e < 100_000 { e = e * 10 + Int(t[i] &- 48) }; i += 1 }
            exponent += eneg ? -e : e
        }
        guard i == n else { return nil }
        if digits <= 15, abs(exponent) <= 22 {
            var v = Double(mantissa)
            v = exponent < 0 ? v / exactPowers[-exponent] : v * exactPowers[exponent]
            return negative ? -v : v
        }
        return strtodFallback(t)
    }

    private static func special(_ t: UnsafeRawBufferPointer) -> Double? {
        var s = String(decoding: t, as: UTF8.self).lowercased()
        var sign = 1.0
        if s.hasPrefix("-") { sign = -1; s.removeFirst() } else if s.hasPrefix("+") { s.removeFirst() }
        switch s {
        case "nan": return .nan
        case "inf", "infinity": return sign * .infinity
        default: return nil
        }
    }

    private static func strtodFallback(_ t: UnsafeRawBufferPointer) -> Double? {
        guard t.count < 512 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: t.count + 1) { buf in
            for i in 0..<t.count { buf[i] = CChar(bitPattern: t[i]) }
            buf[t.count] = 0
            var end: UnsafeMutablePointer<CChar>?
            let v = strtod(buf.baseAddress!, &end)
            return end == buf.baseAddress! + t.count ? v : nil
        }
    }

    public static func bool(_ t: UnsafeRawBufferPointer) -> Bool? {
        switch t.count {
        case 1:
            switch t[0] | 0x20 {
            case UInt8(ascii: "t"), UInt8(ascii: "y"), UInt8(ascii: "1") | 0x20: return true
            case UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "0") | 0x20: return false
            default: return nil
            }
        case 2: return equalsLower(t, "no") ? false : nil
        case 3: return equalsLower(t, "yes") ? true : nil
        case 4: return equalsLower(t, "true") ? true : nil
        case 5: return equalsLower(t, "false") ? false : nil
        default: return nil
        }
    }

    /// A strict form of `bool` used for inference: only `true`/`false` in any case, so a column of
    /// 0/1 flags is inferred as int64 rather than bool.
    public static func inferBool(_ t: UnsafeRawBufferPointer) -> Bool? {
        switch t.count {
        case 4: return equalsLower(t, "true") ? true : nil
        case 5: return equalsLower(t, "false") ? false : nil
        default: return nil
        }
    }

    static func equalsLower(_ t: UnsafeRawBufferPointer, _ word: StaticString) -> Bool {
        guard t.count == word.utf8CodeUnitCount else { return false }
        let w = word.utf8Start
        for i in 0..<t.count where t[i] | 0x20 != w[i] { return false }
        return true
    }

    @inline(__always) private static func digits(_ t: UnsafeRawBufferPointer, _ at: Int, _ count: Int) -> Int? {
        guard at + count <= t.count else { return nil }
        var v = 0
        for i in at..<(at + count) {
            let d = t[i] &- 48
            guard d < 10 else { return nil }
            v = v * 10 + Int(d)
        }
        return v
    }

    /// `YYYY-MM-DD` → days since epoch.
    public static func date(_ t: UnsafeRawBufferPointer) -> Int32? {
        guard t.count == 10 else { return nil }
        return dateAt(t).map { Int32($0) }
    }

    private static func dateAt(_ t: UnsafeRawBufferPointer) -> Int? {
        guard t.count >= 10, t[4] == 45, t[7] == 45,
              let y = digits(t, 0, 4), let m = digits(t, 5, 2), let d = digits(t, 8, 2),
              (1...12).contains(m), d >= 1, d <= Temporal.daysInMonth(year: y, month: m) else { return nil }
        return Temporal.days(year: y, month: m, day: d)
    }

    /// ISO-8601 / RFC 3339 timestamps: `YYYY-MM-DD[T ]HH:MM[:SS[.f{1,9}]][Z|±HH[:MM]]`, or a bare date
    /// (midnight). Without an offset the time is taken as UTC. Returns µs since epoch.
    public static func timestamp(_ t: UnsafeRawBufferPointer) -> Int64? {
        guard let days = dateAt(t) else { return nil }
        var micros = Int64(days) * Temporal.microsPerDay
        if t.count == 10 { return micros }
        guard t.count >= 16, t[10] == 84 || t[10] == 32 || t[10] == 116,
              let hh = digits(t, 11, 2), t[13] == 58, let mm = digits(t, 14, 2), hh < 24, mm < 60 else { return nil }
        var i = 16
        var ss = 0
        if i < t.count, t[i] == 58 {
            guard let s = digits(t, i + 1, 2), s < 61 else { return nil }
            ss = s; i += 3
        }
        var frac: Int64 = 0
        if i < t.count, t[i] == 46 || t[i] == 44 {
            i += 1
            var nd = 0
            while i < t.count, isDigit(t[i]) {
                if nd < 6 { frac = frac * 10 + Int64(t[i] &- 48) }
                nd += 1; i += 1
            }
            guard nd > 0 else { return nil }
            if nd < 6 { for _ in nd..<6 { frac *= 10 } }
        }
        micros += Int64(hh * 3600 + mm * 60 + ss) * Temporal.microsPerSecond + frac
        if i == t.count { return micros }
        if t[i] == 90 || t[i] == 122 { return i + 1 == t.count ? micros : nil }
        guard t[i] == 43 || t[i] == 45, let oh = digits(t, i + 1, 2) else { return nil }
        let sign: Int64 = t[i] == 45 ? -1 : 1
        i += 3
        var om = 0
        if i < t.count, t[i] == 58 { i += 1 }
        if i < t.count { guard let m = digits(t, i, 2) else { return nil }; om = m; i += 2 }
        guard i == t.count, oh < 24, om < 60 else { return nil }
        return micros - sign * Int64(oh * 3600 + om * 60) * Temporal.microsPerSecond
    }

    /// Decimal text → unscaled value at `scale`; nil if malformed, too precise for `scale`
    /// (non-zero digits would be lost), or wider than `precision` digits.
    public static func decimal(_ t: UnsafeRawBufferPointer, precision: Int, scale: Int) -> Int128? {
        var i = 0
        let n = t.count
        guard n > 0 else { return nil }
        var negative = false
        if t[0] == 45 || t[0] == 43 { negative = t[0] == 45; i = 1 }
        var v: Int128 = 0, intDigits = 0, fracDigits = 0, any = false
        while i < n, isDigit(t[i]) {
            if v != 0 || t[i] != 48 { intDigits += 1 }
            guard intDigits <= 38 else { return nil }
            v = v * 10 + Int128(t[i] &- 48); any = true; i += 1
        }
        if i < n, t[i] == 46 {
            i += 1
            while i < n, isDigit(t[i]) {
                if fracDigits < scale { v = v * 10 + Int128(t[i] &- 48); fracDigits += 1 } else if t[i] != 48 { return nil }
                any = true; i += 1
            }
        }
        guard any, i == n, intDigits <= precision - scale else { return nil }
        for _ in fracDigits..<scale { v *= 10 }
        return negative ? -v : v
    }
}

extension TextParsing {
    /// String conveniences for code off the hot path.
    public static func withBytes<R>(_ s: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var s = s
        return s.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }
}
