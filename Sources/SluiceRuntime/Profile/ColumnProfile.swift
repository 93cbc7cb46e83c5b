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
    private var welford = (n: 0, mean: 0.0, m2: 0.0)
    private var lengths = (min: Int.max, max: 0, total: 0)
    private var frequent = SpaceSaving(capacity: 64)
    private var minText: [UInt8]?, maxText: [UInt8]?
    private var histogram = DoublingHistogram()
    /// Text: the distribution of lengths (bytes), charted when no value repeats enough to rank.
    private var lengthHistogram = DoublingHistogram()

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
        switch column.type {
        case .int64:
            for row in 0..<n where !column.isNull(row) {
                let v = column.int64s[row]
                distinct.add(UInt64(bitPattern: v))
                number(Double(v), .int64(v))
                frequent.add(UInt64(bitPattern: v)) { String(v) }
            }
        case .double:
            for row in 0..<n where !column.isNull(row) {
                let v = column.doubles[row]
                distinct.add(v.bitPattern)
                number(v, .double(v))
                frequent.add(v.bitPattern) { Value.formatDouble(v) }
            }
        case .decimal(_, let scale):
            for row in 0..<n where !column.isNull(row) {
                let u = column.decimals[row]
                let key = UInt64(truncatingIfNeeded: u) ^ UInt64(truncatingIfNeeded: u >> 64)
                distinct.add(key)
                number(DecimalText.toDouble(u, scale: scale), .decimal(u, scale: scale))
                frequent.add(key) { DecimalText.format(u, scale: scale) }
            }
        case .timestamp, .date:
            for row in 0..<n where !column.isNull(row) {
                let micros = column.type == .date ? Int64(column.int32s[row]) * Temporal.microsPerDay : column.int64s[row]
                distinct.add(UInt64(bitPattern: micros))
                let v: Value = column.type == .date ? .date(column.int32s[row]) : .timestamp(micros)
                if minValue.map({ QualityChecker.less(v, $0) }) ?? true { minValue = v }
                if maxValue.map({ QualityChecker.less($0, v) }) ?? true { maxValue = v }
                histogram.add(Double(micros))
                frequent.add(UInt64(bitPattern: micros)) { v.text }
            }
        case .bool:
            for row in 0..<n where !column.isNull(row) {
                let b = column.bools[row]
                distinct.add(b ? 1 : 2)
                frequent.add(b ? 1 : 2) { b ? "true" : "false" }
            }
        case .string, .json, .bytes:
            for row in 0..<n where !column.isNull(row) {
                let key = column.withBytes(at: row) { bytes in
                    lengths.min = min(lengths.min, bytes.count)
                    lengths.max = max(lengths.max, bytes.count)
                    lengths.total += bytes.count
                    lengthHistogram.add(Double(bytes.count))
                    // Byte order is code point order for UTF-8, so min/max compare bytes.
                    if minText.map({ Self.less(bytes, $0) }) ?? true { minText = Array(bytes) }
                    if maxText.map({ Self.less($0, bytes) }) ?? true { maxText = Array(bytes) }
                    return HyperLogLog.hash(bytes)
                }
                distinct.add(key)
                frequent.add(key) { column.type == .bytes ? column.bytes[column.offsets[row]..<column.offsets[row + 1]].hexString : column.string(at: row) }
            }
            let text: ([UInt8]) -> Value = { column.type == .bytes ? .string($0.hexString) : .string(String(decoding: $0, as: UTF8.self)) }
            minValue = minText.map(text)
            maxValue = maxText.map(text)
        }
    }

    /// `n` rows without this column (null).
    mutating func addMissing(_ n: Int) {
        count += n
        nulls += n
    }

    private mutating func number(_ d: Double, _ v: Value) {
        if minValue.map({ QualityChecker.less(v, $0) }) ?? true { minValue = v }
        if maxValue.map({ QualityChecker.less($0, v) }) ?? true { maxValue = v }
        guard d.isFinite else { return }
        welford.n += 1
        let delta = d - welford.mean
        welford.mean += delta / Double(welford.n)
        welford.m2 += delta * (d - welford.mean)
        histogram.add(d)
    }

    private mutating func resetValueStatistics() {
        minValue = nil
        maxValue = nil
        minText = nil
        maxText = nil
        welford = (0, 0, 0)
        histogram = DoublingHistogram()
    }

    // MARK: Results

    var nullRatio: Double { count == 0 ? 0 : Double(nulls) / Double(count) }
    var distinctEstimate: Int { min(count - nulls, distinct.estimate) }
    var mean: Double? { isNumeric && welford.n > 0 ? welford.mean : nil }
    /// The sample standard deviation, as pandas and DuckDB report it.
    var stddev: Double? { isNumeric && welford.n > 1 ? (welford.m2 / Double(welford.n - 1)).squareRoot() : nil }
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
    var lengthBins: (bounds: [Double], counts: [Int])? { isText ? lengthHistogram.bins() : nil }
}

extension ColumnProfile {
    static func less(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool { b.withUnsafeBytes { compare(a, $0) < 0 } }
    static func less(_ a: [UInt8], _ b: UnsafeRawBufferPointer) -> Bool { a.withUnsafeBytes { compare($0, b) < 0 } }

    private static func compare(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Int {
        let common = min(x.count, y.count)
        if common > 0 {
            let c = memcmp(x.baseAddress!, y.baseAddress!, common)
            if c != 0 { return Int(c) }
        }
        return x.count - y.count
    }
}

/// HyperLogLog with 2^14 registers (about 0.8% standard error), over 64-bit hashes.
struct HyperLogLog {
    private static let p = 14
    private var registers = [UInt8](repeating: 0, count: 1 << p)

    /// A well-mixed 64-bit hash of bytes (FNV-1a, then a SplitMix64 finaliser).
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

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
struct SpaceSaving {
    let capacity: Int
    /// Keyed by the value's hash; the text is made only when a value gets a counter.
    private var counters: [UInt64: (count: Int, error: Int, text: String)] = [:]

    init(capacity: Int) { self.capacity = capacity }

    mutating func add(_ key: UInt64, _ text: () -> String) {
        if let c = counters[key] {
            counters[key] = (c.count + 1, c.error, c.text)
        } else if counters.count < capacity {
            counters[key] = (1, 0, text())
        } else if let (victim, c) = counters.min(by: { $0.value.count < $1.value.count }) {
            counters[victim] = nil
            counters[key] = (c.count + 1, c.count, text())
        }
    }

    func top(_ k: Int) -> [(value: String, count: Int)] {
        counters.values.filter { $0.error == 0 || $0.count - $0.error >= 2 }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.text < $1.text }.prefix(k).map { ($0.text, $0.count) }
    }
}

/// Exact counts in 64 equal bins whose width doubles (merging neighbours) whenever a value falls
/// outside the range, so the bins always cover every value seen.
struct DoublingHistogram {
    private static let binCount = 64
    private var pending: [Double] = []
    private var origin = 0.0, width = 0.0
    private var counts = [Int](repeating: 0, count: binCount)

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
        let values = pending
        pending = []
        for v in values { place(v) }
    }

    private mutating func place(_ v: Double) {
        while v < origin || v >= origin + width * Double(Self.binCount) { grow(toward: v) }
        counts[min(Self.binCount - 1, Int((v - origin) / width))] += 1
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
