import Foundation

/// Live counters of a run, updated by pipeline runners and read by the CLI's progress display.
public final class RunProgress: @unchecked Sendable {
    public struct Snapshot: Sendable {
        public var pipeline: String
        public var records = 0
        public var bytes = 0
        public var totalBytes: Int64?
        public var unitsDone = 0
        public var unitsTotal = 0
        public var started = Date()
        public var finished = false
    }

    private let lock = NSLock()
    private var entries: [String: Snapshot] = [:]
    private var order: [String] = []

    public init() {}

    func start(_ pipeline: String, units: Int, totalBytes: Int64?) {
        lock.withLock {
            if entries[pipeline] == nil { order.append(pipeline) }
            entries[pipeline] = Snapshot(pipeline: pipeline, totalBytes: totalBytes, unitsTotal: units)
        }
    }

    func add(_ pipeline: String, records: Int, bytes: Int) {
        lock.withLock {
            entries[pipeline]?.records += records
            entries[pipeline]?.bytes += bytes
        }
    }

    func unitDone(_ pipeline: String) { lock.withLock { entries[pipeline]?.unitsDone += 1 } }
    func finish(_ pipeline: String) { lock.withLock { entries[pipeline]?.finished = true } }

    public var snapshots: [Snapshot] { lock.withLock { order.compactMap { entries[$0] } } }
}

/// Set from a signal handler; runners stop reading at the next batch and roll back the open unit.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    public init() {}
    public var isCancelled: Bool { lock.withLock { value } }
    public func cancel() { lock.withLock { value = true } }
}
