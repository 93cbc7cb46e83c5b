import SluiceCore

/// Distinct byte strings with their insertion index: the dictionary of a dictionary-encoded
/// Parquet column. An open-addressing table over one bytes buffer, so a lookup allocates nothing.
struct ByteDictionary: PageDictionary {
    private(set) var bytes: [UInt8] = []
    private(set) var offsets: [Int] = [0]
    private var slots: [Int32]   // index + 1; 0 = empty
    private var mask: Int

    init() {
        slots = [Int32](repeating: 0, count: 1024)
        mask = 1023
    }

    var count: Int { offsets.count - 1 }
    var byteCount: Int { bytes.count }
    var pageBytes: Int { bytes.count + 4 * count }

    /// The index of `value`, inserting it if new (`inserted`).
    mutating func index(of value: UnsafeRawBufferPointer) -> (index: Int, inserted: Bool) {
        var slot = Self.slot(value, mask)
        while true {
            let entry = Int(slots[slot])
            if entry == 0 { break }
            let i = entry - 1
            let start = offsets[i], end = offsets[i + 1]
            if end - start == value.count,
               value.isEmpty || bytes.withUnsafeBytes({ ByteOrder.equal($0.baseAddress! + start, value.baseAddress!, count: value.count) }) {
                return (i, false)
            }
            slot = (slot + 1) & mask
        }
        let i = count
        bytes.append(contentsOf: value)
        offsets.append(bytes.count)
        slots[slot] = Int32(i + 1)
        if count * 2 > slots.count { grow() }
        return (i, true)
    }

    @inline(__always) private static func slot(_ value: UnsafeRawBufferPointer, _ mask: Int) -> Int {
        let h = ByteOrder.hash64(value)
        return Int(truncatingIfNeeded: h ^ (h >> 32)) & mask
    }

    private mutating func grow() {
        let old = count
        slots = [Int32](repeating: 0, count: slots.count * 2)
        mask = slots.count - 1
        bytes.withUnsafeBytes { all in
            for i in 0..<old {
                var slot = Self.slot(UnsafeRawBufferPointer(rebasing: all[offsets[i]..<offsets[i + 1]]), mask)
                while slots[slot] != 0 { slot = (slot + 1) & mask }
                slots[slot] = Int32(i + 1)
            }
        }
    }

    /// The dictionary page body: every value PLAIN-encoded (4-byte length + bytes), in index order.
    func plainEncoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + count * 4)
        for i in 0..<count {
            withUnsafeBytes(of: UInt32(offsets[i + 1] - offsets[i]).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: bytes[offsets[i]..<offsets[i + 1]])
        }
        return out
    }
}

/// The RLE / bit-packing hybrid encoding of dictionary indices: one byte of bit width, then the
/// indices bit-packed in groups of eight (the last group padded; readers stop at the page's count).
enum HybridEncoder {
    static func bitWidth(forDictionaryOf count: Int) -> Int {
        count <= 1 ? 0 : Int.bitWidth - (count - 1).leadingZeroBitCount
    }

    static func encodeIndices(_ indices: [UInt32], bitWidth: Int) -> [UInt8] {
        var out: [UInt8] = [UInt8(bitWidth)]
        guard !indices.isEmpty else { return out }
        if bitWidth == 0 {
            // All values are index 0: one RLE run with a zero-byte value.
            appendVarint(UInt64(indices.count) << 1, to: &out)
            return out
        }
        let groups = (indices.count + 7) / 8
        appendVarint(UInt64(groups) << 1 | 1, to: &out)
        var buffer: UInt64 = 0
        var bits = 0
        for g in 0..<groups {
            for k in 0..<8 {
                let i = g * 8 + k
                let v = i < indices.count ? UInt64(indices[i]) : 0
                buffer |= v << UInt64(bits)
                bits += bitWidth
                while bits >= 8 {
                    out.append(UInt8(truncatingIfNeeded: buffer))
                    buffer >>= 8
                    bits -= 8
                }
            }
        }
        return out
    }

    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }
}
