/// UTF-8 validation on raw bytes, with an 8-bytes-at-a-time ASCII fast path (most data is ASCII).
public enum UTF8Validation {
    public static func isValid(_ p: UnsafeRawBufferPointer) -> Bool {
        let n = p.count
        var i = 0
        while i + 8 <= n {
            if p.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
            i += 8
        }
        while i < n {
            let c = p[i]
            if c < 0x80 { i += 1; continue }
            let len: Int
            let minScalar: UInt32
            var v: UInt32
            switch c {
            case 0xC2...0xDF: len = 2; v = UInt32(c & 0x1F); minScalar = 0x80
            case 0xE0...0xEF: len = 3; v = UInt32(c & 0x0F); minScalar = 0x800
            case 0xF0...0xF4: len = 4; v = UInt32(c & 0x07); minScalar = 0x10000
            default: return false
            }
            guard i + len <= n else { return false }
            for k in 1..<len {
                let b = p[i + k]
                guard b & 0xC0 == 0x80 else { return false }
                v = v << 6 | UInt32(b & 0x3F)
            }
            guard v >= minScalar, v <= 0x10FFFF, !(0xD800...0xDFFF).contains(v) else { return false }
            i += len
        }
        return true
    }
}
