#if canImport(Glibc)
import Glibc
#endif
import SluiceCore

/// The raw columns of the batch a parser (JSON or CSV) is filling, appended to through pointers.
///
/// A record appends a value to each of its columns; with Swift arrays every append pays
/// uniqueness, capacity and bounds checks (and reference counting on nested arrays) that cost
/// more than scanning the value. Here a value is a few stores and two counters; the columns
/// become `RawColumn`s once per batch, in `take`.
final class RawColumnBuilder {
    /// One column's buffers: kinds, value end offsets (`ends[-1]` is 0), bytes; and its JSON key.
    struct Buffers {
        var kinds: UnsafeMutablePointer<UInt8>
        var ends: UnsafeMutablePointer<Int>
        var bytes: UnsafeMutablePointer<UInt8>
        var count = 0
        var capacity: Int
        var byteCount = 0
        var byteCapacity: Int
        /// The key's bytes as they appear between quotes in the input, when it needs no escaping:
        /// a predicted key is then confirmed by comparing the input with them.
        var key: UnsafeMutablePointer<UInt8>?
        var keyCount = 0

        @inline(__always) mutating func append(_ kind: RawKind, _ value: UnsafeRawBufferPointer) {
            if count == capacity { growRows() }
            let n = value.count
            if byteCount + n > byteCapacity { growBytes(byteCount + n) }
            kinds[count] = kind.rawValue
            if n > 64 {
                memcpy(bytes + byteCount, value.baseAddress!, n)
            } else if n > 0 {
                // Most values are short: copied inline, without a call.
                let source = value.baseAddress!, target = UnsafeMutableRawPointer(bytes + byteCount)
                var k = 0
                while k + 8 <= n {
                    target.storeBytes(of: source.loadUnaligned(fromByteOffset: k, as: UInt64.self), toByteOffset: k, as: UInt64.self)
                    k += 8
                }
                while k < n {
                    target.storeBytes(of: source.load(fromByteOffset: k, as: UInt8.self), toByteOffset: k, as: UInt8.self)
                    k += 1
                }
            }
            byteCount += n
            ends[count] = byteCount
            count += 1
        }

        @inline(__always) mutating func appendNull() {
            if count == capacity { growRows() }
            kinds[count] = RawKind.null.rawValue
            ends[count] = byteCount
            count += 1
        }

        mutating func removeLast() {
            count -= 1
            byteCount = ends[count - 1]
        }

        /// Whether `p` holds this column's key, then a closing quote, at `at`.
        @inline(__always) func keyMatches(_ p: UnsafeRawBufferPointer, at: Int) -> Bool {
            guard let key, at + keyCount < p.count, p[at + keyCount] == 34 else { return false }
            return ByteOrder.equal(p.baseAddress! + at, key, count: keyCount)
        }

        @inline(never) mutating func growRows() {
            let newCapacity = max(1024, capacity * 2)
            kinds = Self.resize(kinds, count, newCapacity)
            ends = Self.resize(ends - 1, count + 1, newCapacity + 1) + 1
            capacity = newCapacity
        }

        @inline(never) mutating func growBytes(_ needed: Int) {
            let newCapacity = max(needed, byteCapacity * 2, 4096)
            bytes = Self.resize(bytes, byteCount, newCapacity)
            byteCapacity = newCapacity
        }

        static func resize<T>(_ old: UnsafeMutablePointer<T>, _ used: Int, _ capacity: Int) -> UnsafeMutablePointer<T> {
            let new = UnsafeMutablePointer<T>.allocate(capacity: capacity)
            new.moveInitialize(from: old, count: used)
            old.deallocate()
            return new
        }

        init(nulls: Int, rows: Int, bytes byteCapacity: Int, key: [UInt8]?) {
            capacity = max(rows, nulls, 16)
            self.byteCapacity = max(byteCapacity, 64)
            kinds = .allocate(capacity: capacity)
            ends = UnsafeMutablePointer<Int>.allocate(capacity: capacity + 1) + 1
            ends[-1] = 0
            bytes = .allocate(capacity: self.byteCapacity)
            kinds.initialize(repeating: RawKind.null.rawValue, count: nulls)
            ends.initialize(repeating: 0, count: nulls)
            count = nulls
            if let key, !key.contains(where: { $0 == 34 || $0 == 92 || $0 < 0x20 }) {
                let stored = UnsafeMutablePointer<UInt8>.allocate(capacity: max(key.count, 1))
                stored.initialize(from: key, count: key.count)
                self.key = stored
                keyCount = key.count
            }
        }

        func deallocate() {
            kinds.deallocate()
            (ends - 1).deallocate()
            bytes.deallocate()
            key?.deallocate()
        }

        /// The values as a `RawColumn`, leaving the column empty. The buffers are copied out and
        /// replaced by new ones of the same capacity, whose pages take memory only once written:
        /// so a batch is held twice only one column at a time.
        mutating func take() -> RawColumn {
            var column = RawColumn()
            column.kinds = Array(UnsafeBufferPointer(start: kinds, count: count))
            column.offsets = Array(UnsafeBufferPointer(start: ends - 1, count: count + 1))
            column.bytes = Array(UnsafeBufferPointer(start: bytes, count: byteCount))
            kinds = Self.resize(kinds, 0, capacity)
            ends = Self.resize(ends - 1, 1, capacity + 1) + 1
            bytes = Self.resize(bytes, 0, byteCapacity)
            count = 0
            byteCount = 0
            return column
        }
    }

    private(set) var columns: UnsafeMutablePointer<Buffers>
    private(set) var count = 0
    private var capacity = 16

    init() {
        columns = .allocate(capacity: capacity)
    }

    deinit {
        for c in 0..<count { columns[c].deallocate() }
        columns.deinitialize(count: count)
        columns.deallocate()
    }

    /// Adds a column holding `nulls` nulls, sized for `rows` values and `bytes` bytes; `key` is its
    /// JSON key.
    func addColumn(nulls: Int, rows: Int, bytes: Int, key: [UInt8]? = nil) {
        if count == capacity {
            columns = Buffers.resize(columns, count, capacity * 2)
            capacity *= 2
        }
        (columns + count).initialize(to: Buffers(nulls: nulls, rows: rows, bytes: bytes, key: key))
        count += 1
    }

    /// The columns' values, leaving them empty.
    func take() -> [RawColumn] { (0..<count).map { columns[$0].take() } }
}
