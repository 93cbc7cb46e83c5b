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

    /// A 64-bit hash of bytes taken eight at a time, for sketches over many values (distinct
    /// counts, frequent values): several times faster than FNV-1a on text longer than a word.
    /// Not stable across versions; callers mix it further (`HyperLogLog.mix`).
    @inlinable @inline(__always) public static func hash64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let m: UInt64 = 0x9E37_79B9_7F4A_7C15
        var h = UInt64(bytes.count) &* m
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* m
            h ^= h >> 29
            i += 8
        }
        if i < n {
            // The last bytes in at most two loads (overlapping ones; the length is mixed in already).
            let tail: UInt64
            if n >= 8 {
                tail = bytes.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            } else if n >= 4 {
                tail = UInt64(bytes.loadUnaligned(as: UInt32.self)) | UInt64(bytes.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)) << 32
            } else {
                tail = UInt64(bytes[0]) | UInt64(bytes[n >> 1]) << 8 | UInt64(bytes[n - 1]) << 16
            }
            h = (h ^ tail) &* m
            h ^= h >> 29
        }
        return h
    }

    /// Whether `count` bytes at `a` and `b` are equal: short ones compared inline, eight at a time
    /// (no call, which costs more than the comparison for keys and codes), long ones with memcmp.
    @inlinable @inline(__always) public static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
        guard count <= 32 else { return memcmp(a, b, count) == 0 }
        var k = 0
        while k + 8 <= count {
            guard a.loadUnaligned(fromByteOffset: k, as: UInt64.self) == b.loadUnaligned(fromByteOffset: k, as: UInt64.self) else { return false }
            k += 8
        }
        while k < count {
            guard a.load(fromByteOffset: k, as: UInt8.self) == b.load(fromByteOffset: k, as: UInt8.self) else { return false }
            k += 1
        }
        return true
    }
}
