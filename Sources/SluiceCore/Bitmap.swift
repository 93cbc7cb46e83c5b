/// A growable bit set, used as a column's validity bitmap (bit set = value present).
public struct Bitmap: Sendable, Hashable {
    public private(set) var words: [UInt64] = []
    public private(set) var count = 0
    public private(set) var unsetCount = 0

    public init() {}

    public init(repeating value: Bool, count: Int) {
        words = Array(repeating: value ? ~0 : 0, count: (count + 63) / 64)
        self.count = count
        unsetCount = value ? 0 : count
    }

    @inline(__always)
    public mutating func append(_ bit: Bool) {
        let word = count >> 6
        if word == words.count { words.append(0) }
        if bit { words[word] |= 1 << UInt64(count & 63) } else { unsetCount += 1 }
        count += 1
    }

    @inline(__always)
    public subscript(index: Int) -> Bool {
        words[index >> 6] & (1 << UInt64(index & 63)) != 0
    }

    public mutating func reserveCapacity(_ n: Int) { words.reserveCapacity((n + 63) / 64) }

    /// Over ready words (bits past `count` are ignored).
    package init(words: [UInt64], count: Int) {
        var words = words
        if count & 63 != 0, !words.isEmpty { words[words.count - 1] &= (1 << UInt64(count & 63)) - 1 }
        self.words = words
        self.count = count
        unsetCount = count - words.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// Bits set in both (rows valid in both columns).
    static func & (a: Bitmap, b: Bitmap) -> Bitmap {
        if a.unsetCount == 0 { return b }
        if b.unsetCount == 0 { return a }
        return Bitmap(words: zip(a.words, b.words).map { $0 & $1 }, count: a.count)
    }
}
