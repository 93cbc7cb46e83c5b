/// Distinct fixed-width values with their insertion index: the dictionary of a dictionary-encoded
/// INT32, INT64 or DOUBLE column (a low-cardinality number such as a quantity or a status code).
/// Values are kept as their bit patterns, so every value (NaN payloads, -0.0) reads back exactly.
struct ValueDictionary: PageDictionary {
    /// Bytes a value takes in the dictionary page: 4 (INT32) or 8.
    let width: Int
    private(set) var values: [UInt64] = []
    private var slots = [Int32](repeating: 0, count: 1024)   // index + 1; 0 = empty
    private var mask = 1023

    init(width: Int) { self.width = width }

    var count: Int { values.count }
    var pageBytes: Int { values.count * width }

    /// The index of `value`, inserting it if new.
    @inline(__always) mutating func index(of value: UInt64) -> Int {
        var slot = Self.slot(value, mask)
        while true {
            let entry = Int(slots[slot])
            if entry == 0 { break }
            if values[entry - 1] == value { return entry - 1 }
            slot = (slot + 1) & mask
        }
        values.append(value)
        slots[slot] = Int32(values.count)
        if values.count * 2 > slots.count { grow() }
        return values.count - 1
    }

    @inline(__always) private static func slot(_ value: UInt64, _ mask: Int) -> Int {
        let h = value &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: h >> 32 ^ h) & mask
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        mask = slots.count - 1
        for (i, value) in values.enumerated() {
            var slot = Self.slot(value, mask)
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(i + 1)
        }
    }

    /// The dictionary page body: every value PLAIN-encoded (little-endian, `width` bytes), in index order.
    func plainEncoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(pageBytes)
        for v in values {
            withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0.prefix(width)) }
        }
        return out
    }
}

/// What a column chunk needs of its dictionary, whatever the values.
protocol PageDictionary {
    var count: Int { get }
    /// Bytes of the dictionary page before compression.
    var pageBytes: Int { get }
    func plainEncoded() -> [UInt8]
}
