import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SluiceConfig
import SluiceCore
import SluiceFormats

/// Delivers a webhook endpoint's spool: records from the position the sink last committed, in
/// batches, each batch's end committed with its rows (`spool` = segment:offset). Segments are
/// deleted only after that commit (`acknowledge`). Under `sluice serve` (follow) it waits for new
/// requests; `sluice run` delivers what is spooled and stops.
public final class SpoolSource: Source, @unchecked Sendable {
    public static let stateKey = "spool"
    public let config: WebhookSourceConfig
    private let typer: BatchTyper
    private let lock = NSLock()
    private var spool: Spool?
    private let ownsSpool: Bool
    private var stopping = false
    /// The sink failed this run's unit: reading on would only fill the channel nobody commits.
    private var writerFailed = false
    /// Checkpoints sent and not yet committed: position, records up to it, oldest receive time.
    private var sent: [(position: SpoolPosition, records: Int64, receivedAt: Int64)] = []
    /// Receive-to-commit time of the last committed batch's oldest record, in seconds.
    public private(set) var lastLag: Double = 0
    /// Called when delivery starts reading, which is after the sink opened: it is reachable.
    public var onDeliveryStarted: (@Sendable () -> Void)?

    /// Spooled records not yet committed to the sink (zero before the spool is open).
    public var backlog: (bytes: Int64, records: Int64) { lock.withLock { spool }?.backlog ?? (0, 0) }

    /// `spool`: the server's open spool; nil to open it (and hold its lock) for this run.
    public init(config: WebhookSourceConfig, schema: SchemaConfig, spool: Spool? = nil) {
        self.config = config
        self.typer = BatchTyper(declared: schema.declared, formats: schema.formats)
        self.spool = spool
        self.ownsSpool = spool == nil
    }

    public static func directory(_ config: WebhookSourceConfig, pipeline: String, context: RunContext) -> String {
        context.resolve(config.spoolPath ?? ".sluice/spool/\(pipeline)")
    }

    public static func open(_ config: WebhookSourceConfig, pipeline: String, context: RunContext) throws -> Spool {
        try Spool(directory: directory(config, pipeline: pipeline, context: context), maxBytes: config.spoolMaxBytes,
                  maxRecords: config.spoolMaxRecords, segmentBytes: config.segmentBytes, retention: config.idempotencyRetention)
    }

    /// Ends a following read once what is spooled now is delivered (graceful shutdown).
    public func stop() {
        lock.withLock { stopping = true }
    }
    private var isStopping: Bool { lock.withLock { stopping } }
    private var hasWriterFailed: Bool { lock.withLock { writerFailed } }

    public func writeFailed(_ unit: WorkUnit) async {
        lock.withLock { writerFailed = true }
    }

    public func plan(state: [String: String], context: RunContext) async throws -> [WorkUnit] {
        let dir = Self.directory(config, pipeline: context.pipeline, context: context)
        if spool == nil, !context.dryRun { spool = try Self.open(config, pipeline: context.pipeline, context: context) }
        return [WorkUnit(id: "spool", location: dir, start: state[Self.stateKey])]
    }

    public func read(_ unit: WorkUnit, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        guard let spool else { return [] }
        onDeliveryStarted?()
        let known = spool.notices.count
        var position = try spool.resume(after: unit.start.flatMap(SpoolPosition.init))
        if spool.notices.count > known {
            var notice = SourceBatch(batch: .empty(Schema()))
            notice.notices = Array(spool.notices.dropFirst(known))
            try await emit(notice)
        }
        lock.withLock { sent = []; writerFailed = false }
        while !hasWriterFailed {
            let (frames, next) = try spool.read(from: position, maxBytes: context.batchBytes)
            if frames.isEmpty {
                if !context.follow || isStopping { break }
                await spool.waitForData(after: position, timeout: 0.25)
                continue
            }
            let records = try await deliver(frames, at: position, context: context, emit: emit)
            let oldest = frames.map(\.receivedAt).min() ?? Temporal.nowMicros()
            lock.withLock { sent.append((next, records, oldest)) }
            position = next
            try await emit(SourceBatch(batch: .empty(Schema()), checkpoint: [StateEntry(key: Self.stateKey, value: next.description)]))
        }
        return [StateEntry(key: Self.stateKey, value: position.description)]
    }

    /// Parses frames into batches: runs of NDJSON bodies are parsed as one text, a JSON body on
    /// its own. Records answered as invalid when they arrived are left out.
    private func deliver(_ frames: [SpoolFrame], at start: SpoolPosition, context: RunContext,
                         emit: (SourceBatch) async throws -> Void) async throws -> Int64 {
        var delivered: Int64 = 0
        var text: [UInt8] = []
        var skipped = Set<Int>()
        var lines = 0
        let location = "\(config.path) (spool \(start))"
        func flush() async throws {
            guard !text.isEmpty else { return }
            let reader = JSONLReader(reader: MemoryReader(text), location: location)
            while let raw = try reader.next(maxRows: context.batchRows, maxBytes: context.batchBytes) {
                delivered += try await send(raw, skipping: skipped, emit: emit)
            }
            text.removeAll(keepingCapacity: true)
            skipped.removeAll()
            lines = 0
        }
        for frame in frames {
            switch frame.format {
            case .ndjson:
                for o in frame.rejectedOrigins { skipped.insert(o + lines) }
                // A byte-order mark is skipped at the start of a body, not in the middle of the text.
                let body = frame.body.starts(with: [0xEF, 0xBB, 0xBF]) ? frame.body.dropFirst(3) : frame.body[...]
                let start = text.count
                text += body
                if body.last != 10 { text.append(10) }
                lines += Self.newlines(in: text, from: start)
            case .json:
                try await flush()
                let raw = try WebhookBody.parse(frame.body, format: .json, location: location)
                delivered += try await send(raw, skipping: Set(frame.rejectedOrigins), emit: emit)
            }
        }
        try await flush()
        return delivered
    }

    private func send(_ raw: RawBatch, skipping: Set<Int>, emit: (SourceBatch) async throws -> Void) async throws -> Int64 {
        let (batch, rejected) = typer.type(Self.deliverable(raw, skipping: skipping, declared: typer.declared))
        try await emit(SourceBatch(batch: batch, rejected: rejected, bytesRead: raw.bytesRead))
        return Int64(batch.rowCount + rejected.count)
    }

    /// The records not refused at the door, with only the undeclared fields they have a value in:
    /// a field only refused records carry (or one null throughout, which the door treats as
    /// absent) must not add a column, decide a column's type, or trip `evolution: freeze`.
    static func deliverable(_ raw: RawBatch, skipping: Set<Int>, declared: Schema) -> RawBatch {
        let null = RawKind.null.rawValue
        let keep = raw.origins.indices.filter { !skipping.contains(raw.origins[$0]) }
        let empty = Set(raw.names.indices.filter { c in
            declared[raw.names[c]] == nil && !keep.contains { raw.columns[c].kinds[$0] != null }
        })
        var out = raw
        out.rejected.removeAll { $0.origin.map(skipping.contains) ?? false }
        if keep.count == raw.rowCount, empty.isEmpty { return out }
        out.origins = keep.map { raw.origins[$0] }
        out.names = []
        out.columns = []
        for (c, name) in raw.names.enumerated() where !empty.contains(c) {
            let column = raw.columns[c]
            var kept = RawColumn()
            if keep.count == raw.rowCount { kept = column } else {
                column.bytes.withUnsafeBytes { all in
                    for row in keep {
                        guard column.kinds[row] != null else { kept.appendNull(); continue }
                        kept.append(RawKind(rawValue: column.kinds[row]) ?? .text,
                                    UnsafeRawBufferPointer(rebasing: all[column.offsets[row]..<column.offsets[row + 1]]))
                    }
                }
            }
            out.names.append(name)
            out.columns.append(kept)
        }
        return out
    }

    /// Newline bytes in `bytes[from...]`, found with memchr: delivery goes over every byte spooled.
    static func newlines(in bytes: [UInt8], from start: Int) -> Int {
        bytes.withUnsafeBytes { p in
            guard let base = p.baseAddress else { return 0 }
            var at = base + start
            let end = base + p.count
            var n = 0
            while at < end, let hit = memchr(at, 10, end - at) {
                n += 1
                at = UnsafeRawPointer(hit) + 1
            }
            return n
        }
    }

    public func acknowledge(_ entries: [StateEntry]) async {
        guard let value = entries.first(where: { $0.key == Self.stateKey })?.value, let position = SpoolPosition(value) else { return }
        let done = lock.withLock {
            let done = sent.filter { $0.position <= position }
            sent.removeAll { $0.position <= position }
            if let oldest = done.map(\.receivedAt).min() { lastLag = Double(Temporal.nowMicros() - oldest) / 1e6 }
            return done
        }
        try? spool?.release(upTo: position, records: done.reduce(0) { $0 + $1.records })
    }

    public func close() async {
        if ownsSpool { spool?.close() }
    }
}
