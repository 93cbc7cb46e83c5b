import SluiceConnectors
import SluiceCore

extension PipelineRunner {
    /// Reads up to `source.unitConcurrency` units at once (an API's parents, whose time is mostly
    /// spent waiting for responses). Each unit reads into a buffer of its own; the buffers are
    /// forwarded whole and in plan order, because the sink writes one unit at a time. Units are
    /// started up to four times the concurrency ahead of the one being forwarded (a slow unit at
    /// the head does not idle the other lanes at once), each buffering at most 16 messages, so
    /// memory stays bounded however many units there are. Transforms run here, on one task, because stateful
    /// ones (deduplicate) must see the batches one after another.
    func produceConcurrently(units: [WorkUnit], source: any Source, context: RunContext, transforms: [any Transform],
                             quality: QualityChecker, channel: BoundedChannel<Message>) async {
        let lanes = UnitPermits(source.unitConcurrency)
        let window = 4 * source.unitConcurrency
        await withTaskGroup(of: Void.self) { group in
            var started: [BoundedChannel<Message>] = []
            var next = 0
            func startNext() {
                let unit = units[next]
                next += 1
                let buffer = BoundedChannel<Message>(capacity: 16)
                started.append(buffer)
                group.addTask {
                    await lanes.acquire()
                    if !self.cancel.isCancelled {
                        _ = await self.read(unit, source: source, context: context, transforms: [], quality: nil, into: buffer)
                    }
                    await lanes.release()
                    await buffer.close()
                }
            }
            while next < units.count, started.count < window { startNext() }
            var downstreamOpen = true
            while downstreamOpen, !started.isEmpty {
                let buffer = started.removeFirst()
                downstreamOpen = await forward(buffer, transforms: transforms, quality: quality, context: context, to: channel)
                await buffer.close()
                if next < units.count, !cancel.isCancelled { startNext() }
            }
            // Stopped early: readers still running see their buffers closed and end.
            for buffer in started { await buffer.close() }
            await group.waitForAll()
        }
    }

    /// Moves one unit's messages into the pipeline's channel, applying the transforms. Returns
    /// false when the channel is closed.
    private func forward(_ buffer: BoundedChannel<Message>, transforms: [any Transform], quality: QualityChecker, context: RunContext,
                         to channel: BoundedChannel<Message>) async -> Bool {
        var unitContext = context
        var current: WorkUnit?
        while let message = await buffer.receive() {
            var out = message
            switch message {
            case .begin(let unit):
                // A unit begun again (a retry) starts its checks over.
                if current == unit { quality.unitRolledBack(unit.id) }
                current = unit
                unitContext.unit = unit.location
            case .batch(let batch, let rejected, let bytes) where !transforms.isEmpty || !quality.isEmpty:
                do {
                    let (b, r) = try Self.process(batch, rejected, transforms: transforms, quality: quality, unit: current?.id ?? "", context: unitContext)
                    out = .batch(b, r, bytes: bytes)
                } catch {
                    // The unit fails as it would have in its reader; its remaining messages are dropped.
                    guard let unit = current else { return true }
                    var e = SluiceError.wrap(error, kind: .source, pipeline: nil, component: sourceComponent)
                    if e.location == nil { e.location = unit.location }
                    guard await channel.send(.failed(unit, e)) else { return false }
                    while await buffer.receive() != nil {}
                    return true
                }
            default:
                break
            }
            guard await channel.send(out) else { return false }
        }
        return true
    }
}

/// At most `count` holders at a time; the others wait in arrival order.
actor UnitPermits {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { free = max(1, count) }

    func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}

extension PipelineRunner {
    /// All of a run's units as one: named after the units it holds (the same units give the
    /// same name, so a files sink replaces what a failed attempt left), read and committed as one.
    static func wholeRunUnit(_ units: [WorkUnit]) -> WorkUnit {
        let hash = ByteOrder.fnv1a(units.map(\.id).joined(separator: "\n").utf8)
        let size = units.compactMap(\.sizeBytes).reduce(0, +)
        return WorkUnit(id: "run:" + String(hash, radix: 16), location: "\(units.count) units (\(units[0].location) …)", sizeBytes: size)
    }

    /// Reads `units` one after another as the single unit `whole`: one begin, their batches, one
    /// end with all their positions. A unit that fails (or would be retried) fails the whole.
    func produce(_ units: [WorkUnit], asOne whole: WorkUnit, source: any Source, context: RunContext, quality: QualityChecker,
                 channel: BoundedChannel<Message>) async {
        let transforms = Transforms.make(config.transforms)
        guard await channel.send(.begin(whole)) else { return }
        var positions: [String: String] = [:]
        for unit in units {
            if cancel.isCancelled {
                await channel.send(.interrupted(whole))
                return
            }
            let buffer = BoundedChannel<Message>(capacity: 16)
            let reader = Task {
                _ = await self.read(unit, source: source, context: context, transforms: transforms, quality: quality, qualityUnit: whole.id, into: buffer)
                await buffer.close()
            }
            var stop = false
            while !stop, let message = await buffer.receive() {
                switch message {
                case .begin:
                    break
                case .batch:
                    stop = !(await channel.send(message))
                case .checkpoint(_, let entries), .end(_, let entries):
                    for e in entries { positions[e.key] = e.value }
                case .failed(_, let error):
                    await channel.send(.failed(whole, error))
                    stop = true
                case .retry:
                    var e = SluiceError(.source, "\(unit.location) failed and would be read again, but this run commits all its units together (run-level quality rules)",
                                        location: unit.location, fix: "run again; nothing of this run was committed")
                    e.code = UnitWriter.qualityFailed
                    await channel.send(.failed(whole, e))
                    stop = true
                case .interrupted:
                    await channel.send(.interrupted(whole))
                    stop = true
                }
            }
            await buffer.close()
            await reader.value
            if stop { return }
        }
        await channel.send(.end(whole, positions.map { StateEntry(key: $0.key, value: $0.value) }.sorted { $0.key < $1.key }))
    }
}
