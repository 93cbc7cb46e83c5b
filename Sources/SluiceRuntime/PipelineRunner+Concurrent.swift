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
                             channel: BoundedChannel<Message>) async {
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
                        _ = await self.read(unit, source: source, context: context, transforms: [], into: buffer)
                    }
                    await lanes.release()
                    await buffer.close()
                }
            }
            while next < units.count, started.count < window { startNext() }
            var downstreamOpen = true
            while downstreamOpen, !started.isEmpty {
                let buffer = started.removeFirst()
                downstreamOpen = await forward(buffer, transforms: transforms, context: context, to: channel)
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
    private func forward(_ buffer: BoundedChannel<Message>, transforms: [any Transform], context: RunContext,
                         to channel: BoundedChannel<Message>) async -> Bool {
        var unitContext = context
        var current: WorkUnit?
        while let message = await buffer.receive() {
            var out = message
            switch message {
            case .begin(let unit):
                current = unit
                unitContext.unit = unit.location
            case .batch(var batch, var rejected, let bytes) where !transforms.isEmpty:
                do {
                    for t in transforms {
                        let (b, r) = try t.apply(batch, context: unitContext)
                        batch = b
                        rejected += r
                    }
                    out = .batch(batch, rejected, bytes: bytes)
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
