import Foundation
import SluiceCore

/// One column's profile, built in one pass with bounded memory: counts, a HyperLogLog distinct
/// estimate, min/max, mean and standard deviation (Welford) for numbers, text lengths, the most
/// frequent values (Space-Saving) and a histogram whose bins double in width as the range grows.
struct ColumnProfile {
    let name: String
    private(set) var type: DataType
    private(set) var count = 0
    private(set) var nulls = 0
    private var distinct = HyperLogLog()
    private(set) var minValue: Value?
    private(set) var maxValue: Value?
    private var moments = Moments()
    private var lengths = (min: Int.max, max: 0, total: 0)
    private var frequent = SpaceSaving(capacity: 64)
    private var minText: [UInt8]?, maxText: [UInt8]?
    private var histogram = DoublingHistogram()
    /// Text: the distribution of lengths (bytes), charted when no value repeats enough to rank.
    private var lengthHistogram = DoublingHistogram()
    /// Lengths below 256 counted exactly, and put into `lengthHistogram` only when asked.
    private var shortLengths = [Int](repeating: 0, count: 256)

    init(name: String, type: DataType) {
        self.name = name
        self.type = type
    }

    var isNumeric: Bool { type == .int64 || type == .double || { if case .decimal = type { true } else { false } }() }
    var isTemporal: Bool { type == .date || type == .timestamp }
    var isText: Bool { type == .string || type == .json }

    /// Adds a batch's column (the batch may have inferred another type: the profile widens).
    mutating func add(_ column: Column) {
        if column.type != type {
            let widened = type.widened(with: column.type)
            if widened != type, count > nulls {
                // Numbers stay numbers (int64 → double); anything else restarts the value statistics as text.
                if !(isNumeric && (widened == .double)) { resetValueStatistics() }
            }
            type = count == nulls ? column.type : widened
        }
        count += column.count
        nulls += column.nullCount
        let n = column.count
        let noNulls = column.nullCount == 0
        // Each loop takes its column's buffer once: per value, the accessors' checks cost more
        // than the statistics.
        switch column.type {
        case .int64:
            var low = Int64.max, high = Int64.min
            var batch = Moments()
            column.int64s.withUnsafeBufferPointer { p in
                for row in 0..<n where noNulls || !column.isNull(row) {
                    let v = p[row]
                    low = min(low, v)
                    high = max(high, v)
                    distinct.add(UInt64(bitPattern: v))
                    batch.add(Double(v))
                    histogram.add(Double(v))
                    frequent.add(UInt64(bitPattern: v), .int(v))
                }
            }
            moments.merge(batch)
            if low <= high { extremes(.int64(low), .int64(high)) }
        case .double:
            var low = Double.infinity, high = -Double.infinity, any = false
            var batch = Moments()
            column.doubles.withUnsafeBufferPointer { p in
                for row in 0..<n where noNulls || !column.isNull(row) {
                    let v = p[row]
                    if !v.isNaN { low = min(low, v); high = max(high, v); any = true }
                    distinct.add(v.bitPattern)
                    if v.isFinite { batch.add(v); histogram.add(v) }
                    frequent.add(v.bitPattern, .double(v))
                }
            }
            moments.merge(batch)
            if any { extremes(.double(low), .double(high)) }
        case .decimal(_, let scale):
            var low = Int128.max, high = Int128.min
            var batch = Moments()
            column.decimals.withUnsafeBufferPointer { p in
                for row in 0..<n where noNulls || !column.isNull(row) {
                    let u = p[row]
                    low = min(low, u)
                    high = max(high, u)
                    let key = UInt64(truncatingIfNeeded: u) ^ UInt64(truncatingIfNeeded: u >> 64)
                    distinct.add(key)
                    let d = DecimalText.toDouble(u, scale: scale)
                    batch.add(d)
                    histogram.add(d)
                    frequent.add(key, .decimal(u, scale))
                }
            }
            moments.merge(batch)
            if low <= high { extremes(.decimal(low, scale: scale), .decimal(high, scale: scale)) }
        case .timestamp, .date:
            let isDate = column.type == .date
            var low = Int64.max, high = Int64.min
            column.int64s.withUnsafeBufferPointer { wide in column.int32s.withUnsafeBufferPointer { days in
                for row in 0..<n where noNulls || !column.isNull(row) {
                    let micros = isDate ? Int64(days[row]) * Temporal.microsPerDay : wide[row]
                    low = min(low, micros)
                    high = max(high, micros)
                    distinct.add(UInt64(bitPattern: micros))
                    histogram.add(Double(micros))
                    frequent.add(UInt64(bitPattern: micros), isDate ? .date(days[row]) : .timestamp(micros))
                }
            } }
            if low <= high {
                let day = { (m: Int64) in Value.date(Int32(m / Temporal.microsPerDay)) }
                extremes(isDate ? day(low) : .timestamp(low), isDate ? day(high) : .timestamp(high))
            }
        case .bool:
            for row in 0..<n where !column.isNull(row) {
                let b = column.bools[row]
                distinct.add(b ? 1 : 2)
                frequent.add(b ? 1 : 2, .bool(b))
            }
        case .string, .json, .bytes:
            let isBytes = column.type == .bytes
            var shortest = lengths.min, longest = lengths.max, total = lengths.total
            column.bytes.withUnsafeBytes { all in column.offsets.withUnsafeBufferPointer { offsets in
                // The batch's smallest and largest text, as ranges of its buffer until the end.
                var low: Range<Int>?, high: Range<Int>?
                var lowKey: UInt64 = 0, highKey: UInt64 = 0
                func slice(_ r: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: all[r]) }
                for row in 0..<n where noNulls || !column.isNull(row) {
                    let range = offsets[row]..<offsets[row + 1]
                    let bytes = slice(range)
                    shortest = min(shortest, bytes.count)
                    longest = max(longest, bytes.count)
                    total += bytes.count
                    if bytes.count < 256 { shortLengths[bytes.count] += 1 } else { lengthHistogram.add(Double(bytes.count)) }
                    // Byte order is code point order for UTF-8, so min/max compare bytes: first
                    // their leading eight, and all of them only when those are equal.
                    let key = Self.leadingBytes(bytes)
                    if low == nil || key < lowKey || (key == lowKey && ByteOrder.compare(bytes, slice(low!)) < 0) { low = range; lowKey = key }
                    if high == nil || key > highKey || (key == highKey && ByteOrder.compare(slice(high!), bytes) < 0) { high = range; highKey = key }
                    let hash = ByteOrder.hash64(bytes)
                    distinct.add(hash)
                    frequent.add(hash, column, row, isBytes: isBytes)
                }
                if let low, minText.map({ Self.less(slice(low), $0) }) ?? true { minText = Array(slice(low)) }
                if let high, maxText.map({ Self.less($0, slice(high)) }) ?? true { maxText = Array(slice(high)) }
            } }
            lengths = (shortest, longest, total)
            let text: ([UInt8]) -> Value = { isBytes ? .string($0.hexString) : .string(String(decoding: $0, as: UTF8.self)) }
            minValue = minText.map(text)
            maxValue = maxText.map(text)
        }
    }

    /// A batch's smallest and largest value, against the run's.
    private mutating func extremes(_ low: Value, _ high: Value) {
        if minValue.map({ low.sorts(before: $0) }) ?? true { minValue = low }
        if maxValue.map({ $0.sorts(before: high) }) ?? true { maxValue = high }
    }

    /// `n` rows without this column (null).
    mutating func addMissing(_ n: Int) {
        count += n
        nulls += n
    }

    private mutating func resetValueStatistics() {
        minValue = nil
        maxValue = nil
        minText = nil
        maxText = nil
        moments = Moments()
        histogram = DoublingHistogram()
    }

    // MARK: Results

    var nullRatio: Double { count == 0 ? 0 : Double(nulls) / Double(count) }
    var distinctEstimate: Int { min(count - nulls, distinct.estimate) }
    var mean: Double? { isNumeric && moments.n > 0 ? moments.mean : nil }
    /// The sample standard deviation, as pandas and DuckDB report it.
    var stddev: Double? { isNumeric && moments.n > 1 ? (moments.m2 / Double(moments.n - 1)).squareRoot() : nil }
    var lengthStats: (min: Int, max: Int, mean: Double)? {
        guard isText, count > nulls else { return nil }
        return (lengths.min, lengths.max, Double(lengths.total) / Double(count - nulls))
    }
    func topValues(_ k: Int = 10) -> [(value: String, count: Int)] { frequent.top(k) }
    /// Equal-width bins over the values (numbers; dates and timestamps as µs).
    /// The outer bounds are the smallest and largest values.
    var bins: (bounds: [Double], counts: [Int])? {
        guard isNumeric || isTemporal, var b = histogram.bins() else { return nil }
        func number(_ v: Value?) -> Double? {
            switch v {
            case .int64(let i)?: Double(i)
            case .double(let d)?: d
            case .decimal(let u, let s)?: DecimalText.toDouble(u, scale: s)
            case .timestamp(let t)?: Double(t)
            case .date(let d)?: Double(Int64(d) * Temporal.microsPerDay)
            default: nil
            }
        }
        if let low = number(minValue), low.isFinite { b.bounds[0] = max(b.bounds[0], low) }
        if let high = number(maxValue), high.isFinite { b.bounds[b.bounds.count - 1] = min(b.bounds[b.bounds.count - 1], high) }
        return b
    }
    var lengthBins: (bounds: [Double], counts: [Int])? {
        guard isText else { return nil }
        var all = lengthHistogram
        for (length, n) in shortLengths.enumerated() where n > 0 { all.add(Double(length), count: n) }
        return all.bins()
    }
}

extension ColumnProfile {
    /// The first eight bytes as a big-endian number (zeros past the end): ordered as the bytes.
    @inline(__always) static func leadingBytes(_ b: UnsafeRawBufferPointer) -> UInt64 {
        if b.count >= 8 { return UInt64(bigEndian: b.loadUnaligned(as: UInt64.self)) }
        var key: UInt64 = 0
        for i in 0..<b.count { key |= UInt64(b[i]) << UInt64(56 - 8 * i) }
        return key
    }

    static func less(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool { b.withUnsafeBytes { ByteOrder.compare(a, $0) < 0 } }
    static func less(_ a: [UInt8], _ b: UnsafeRawBufferPointer) -> Bool { a.withUnsafeBytes { ByteOrder.compare($0, b) < 0 } }
}

/// Count, mean and sum of squared deviations of finite numbers. A batch's values are summed
/// (no division per value) and then merged into the run's by Chan et al.'s pairwise formula,
/// which is as stable as Welford's update.
struct Moments {
    private(set) var n = 0
    private(set) var mean = 0.0
    private(set) var m2 = 0.0
    private var pending: [Double] = []

    /// Values wait in `pending` so the batch's deviations are taken from its own mean.
    @inline(__always) mutating func add(_ d: Double) {
        guard d.isFinite else { return }
        pending.append(d)
    }

    mutating func merge(_ batch: Moments) {
        var b = batch
        b.settle()
        settle()
        guard b.n > 0 else { return }
        let total = n + b.n
        let delta = b.mean - mean
        mean += delta * Double(b.n) / Double(total)
        m2 += b.m2 + delta * delta * Double(n) * Double(b.n) / Double(total)
        n = total
    }

    /// Turns the pending values into count, mean and m2 (two passes over them).
    private mutating func settle() {
        guard !pending.isEmpty else { return }
        var total = 0.0
        for v in pending { total += v }
        let batchMean = total / Double(pending.count)
        var squares = 0.0
        for v in pending { squares += (v - batchMean) * (v - batchMean) }
        let count = pending.count
        pending.removeAll(keepingCapacity: true)
        var settled = Moments()
        settled.n = count
        settled.mean = batchMean
        settled.m2 = squares
        if n == 0 { self = settled } else { merge(settled) }
    }
}

/// HyperLogLog with 2^14 registers (about 0.8% standard error), over 64-bit hashes.
struct HyperLogLog {
    private static let p = 14
    private var registers = [UInt8](repeating: 0, count: 1 << p)

    @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) mutating func add(_ value: UInt64) {
        let h = Self.mix(value)
        let index = Int(h >> UInt64(64 - Self.p))
        let rank = UInt8(min(64 - Self.p, (h << UInt64(Self.p)).leadingZeroBitCount) + 1)
        if rank > registers[index] { registers[index] = rank }
    }

    var estimate: Int {
        let m = Double(registers.count)
        var sum = 0.0, zeros = 0
        for r in registers {
            sum += 1 / Double(UInt64(1) << UInt64(r))
            if r == 0 { zeros += 1 }
        }
        let raw = 0.7213 / (1 + 1.079 / m) * m * m / sum
        // Small cardinalities: linear counting is exact enough and unbiased.
        if raw <= 2.5 * m, zeros > 0 { return Int((m * log(m / Double(zeros))).rounded()) }
        return Int(raw.rounded())
    }
}

/// The Space-Saving algorithm: `capacity` counters; exact while there are fewer distinct values,
/// and the heavy hitters after. A counter taken over from an evicted value carries that count as
/// its possible overestimate; values whose count is not certainly above 1 are not reported.
/// Counters live in flat arrays with an open-addressing index (keys are already well mixed), and
/// values are kept in their typed form and only made text for the report.
struct SpaceSaving {
    enum Item {
        case int(Int64), double(Double), decimal(Int128, Int), date(Int32), timestamp(Int64), bool(Bool), text(String)

        var text: String {
            switch self {
            case .int(let i): String(i)
            case .double(let d): Value.formatDouble(d)
            case .decimal(let u, let s): DecimalText.format(u, scale: s)
            case .date(let d): Temporal.formatDate(d)
            case .timestamp(let t): Temporal.formatTimestamp(t)
            case .bool(let b): b ? "true" : "false"
            case .text(let s): s
            }
        }
    }

    let capacity: Int
    private var keys: [UInt64] = [], counts: [Int] = [], errors: [Int] = [], items: [Item] = []
    /// Slot → counter index + 1 (0: empty); twice the capacity, rounded to a power of two.
    private var slots: [Int32]
    private let mask: Int

    init(capacity: Int) {
        self.capacity = capacity
        var size = 1
        while size < capacity * 4 { size <<= 1 }
        slots = [Int32](repeating: 0, count: size)
        mask = size - 1
    }

    private func find(_ key: UInt64) -> (slot: Int, index: Int?) {
        var slot = home(key)
        while true {
            let entry = Int(slots[slot])
            if entry == 0 { return (slot, nil) }
            if keys[entry - 1] == key { return (slot, entry - 1) }
            slot = (slot + 1) & mask
        }
    }

    /// Every 100,000 values, a column where no value is certainly more frequent than one in
    /// `capacity` (ids, e-mails, free text) is taken to have no frequent values and counting
    /// stops: Space-Saving finds only values above that frequency (a rarer one falls below the
    /// counters' floor, which rises by one every `capacity` evictions), and on such columns nearly
    /// every value evicts a counter, the costliest part of a profile.
    private var seen = 0
    private(set) var abandoned = false

    @inline(__always) mutating func add(_ key: UInt64, _ item: @autoclosure () -> Item) {
        if abandoned { return }
        seen += 1
        if seen % 100_000 == 0 {
            let threshold = max(2, seen / capacity)
            if !counts.indices.contains(where: { counts[$0] - errors[$0] >= threshold }) {
                abandoned = true
                return
            }
        }
        let (slot, index) = find(key)
        if let index {
            counts[index] += 1
        } else if keys.count < capacity {
            keys.append(key); counts.append(1); errors.append(0); items.append(item())
            slots[slot] = Int32(keys.count)
        } else {
            replaceMinimum(with: key, item())
        }
    }

    /// A text value, made a `String` only when it gets a counter.
    @inline(__always) mutating func add(_ key: UInt64, _ column: Column, _ row: Int, isBytes: Bool) {
        if abandoned { return }
        add(key, .text(isBytes ? column.bytes[column.offsets[row]..<column.offsets[row + 1]].hexString : column.string(at: row)))
    }

    /// Counters that held the smallest count when last looked at (checked again when taken):
    /// on a stream of distinct values nearly every add evicts, and this keeps that O(1).
    private var atFloor: [Int] = []
    private var floorValue = 0

    private mutating func replaceMinimum(with key: UInt64, _ item: Item) {
        var victim: Int
        repeat {
            if atFloor.isEmpty {
                floorValue = counts.min() ?? 0
                atFloor = counts.indices.filter { counts[$0] == floorValue }
            }
            victim = atFloor.removeLast()
        } while counts[victim] != floorValue   // counted since: no longer the smallest
        let floor = counts[victim]
        remove(slotOf: keys[victim])
        keys[victim] = key
        counts[victim] = floor + 1
        errors[victim] = floor
        items[victim] = item
        slots[find(key).slot] = Int32(victim + 1)
    }

    private func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: HyperLogLog.mix(key)) & mask }

    /// Linear-probing deletion: later entries of the run shift back so every lookup still finds them.
    private mutating func remove(slotOf key: UInt64) {
        var hole = find(key).slot
        slots[hole] = 0
        var j = hole
        while true {
            j = (j + 1) & mask
            guard slots[j] != 0 else { return }
            let h = home(keys[Int(slots[j]) - 1])
            // The entry at j may move into the hole unless its home lies cyclically in (hole, j].
            let stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j)
            if !stays {
                slots[hole] = slots[j]
                slots[j] = 0
                hole = j
            }
        }
    }

    func top(_ k: Int) -> [(value: String, count: Int)] {
        if abandoned { return [] }
        let ranked = counts.indices.filter { errors[$0] == 0 || counts[$0] - errors[$0] >= 2 }.map { (items[$0].text, counts[$0]) }
        return ranked.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(k).map { ($0.0, $0.1) }
    }
}

/// Exact counts in 64 equal bins whose width doubles (merging neighbours) whenever a value falls
/// outside the range, so the bins always cover every value seen.
struct DoublingHistogram {
    private static let binCount = 64
    private var pending: [Double] = []
    private var origin = 0.0, width = 0.0
    private var counts = [Int](repeating: 0, count: binCount)

    /// `v`, `count` times.
    mutating func add(_ v: Double, count: Int) {
        guard v.isFinite, count > 0 else { return }
        if width == 0 {
            // Enough copies to start the bins from; the rest go in at once.
            let copies = min(count, 1024 - pending.count)
            for _ in 0..<copies { add(v) }
            if count > copies { place(v, count - copies) }
            return
        }
        place(v, count)
    }

    mutating func add(_ v: Double) {
        guard v.isFinite else { return }
        if width == 0 {
            pending.append(v)
            if pending.count == 1024 { start() }
            return
        }
        place(v)
    }

    private mutating func start() {
        let low = pending.min() ?? 0, high = pending.max() ?? 0
        origin = low
        width = high > low ? (high - low) / Double(Self.binCount) * 1.000001 : 1
        rescale()
        let values = pending
        pending = []
        for v in values { place(v) }
    }

    /// The range's end and the bins per unit, kept with `origin` and `width` (a division per
    /// value cost more than the rest of the profile of a number).
    private var end = 0.0, binsPerUnit = 0.0

    @inline(__always) private mutating func place(_ v: Double, _ n: Int = 1) {
        while v < origin || v >= end { grow(toward: v) }
        counts[min(Self.binCount - 1, Int((v - origin) * binsPerUnit))] += n
    }

    private mutating func rescale() {
        end = origin + width * Double(Self.binCount)
        binsPerUnit = 1 / width
    }

    /// Doubles the width; the range extends toward `v`.
    private mutating func grow(toward v: Double) {
        var merged = [Int](repeating: 0, count: Self.binCount)
        if v < origin {
            // The old bins become the upper half.
            for i in 0..<Self.binCount { merged[Self.binCount / 2 + i / 2] += counts[i] }
            origin -= width * Double(Self.binCount)
        } else {
            for i in 0..<Self.binCount { merged[i / 2] += counts[i] }
        }
        width *= 2
        rescale()
        counts = merged
    }

    func bins() -> (bounds: [Double], counts: [Int])? {
        var copy = self
        if copy.width == 0 {
            guard !copy.pending.isEmpty else { return nil }
            copy.start()
        }
        guard let first = copy.counts.firstIndex(where: { $0 > 0 }), let last = copy.counts.lastIndex(where: { $0 > 0 }) else { return nil }
        let bounds = (first...(last + 1)).map { copy.origin + Double($0) * copy.width }
        return (bounds, Array(copy.counts[first...last]))
    }
}
