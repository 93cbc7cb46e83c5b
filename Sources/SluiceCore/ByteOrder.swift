#if canImport(Glibc)
import Glibc
#endif

/// Bytes as the project orders and names them.
public enum ByteOrder {
    /// Lexicographic order of raw bytes (for UTF-8 text, code point order): negative, zero or positive.
    public static func compare(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Int {
        let common = min(x.count, y.count)
        if common > 0 {
            let c = memcmp(x.baseAddress!, y.baseAddress!, common)
            if c != 0 { return Int(c) }
        }
        return x.count - y.count
    }

    /// FNV-1a, 64 bits: a fast, stable (run to run) hash of bytes, for names and sketches.
    public static func fnv1a<S: Sequence<UInt8>>(_ bytes: S) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }
}
