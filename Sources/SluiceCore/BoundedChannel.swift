/// A bounded single-consumer queue between tasks (pipeline stages; a sink and its connection):
/// `send` suspends while the queue is full, so a slow consumer slows the producer down instead of
/// letting memory grow.
public actor BoundedChannel<Element: Sendable> {
    private var items: [Element] = []
    private let capacity: Int
    private var waitingSenders: [CheckedContinuation<Void, Never>] = []
    private var waitingReceiver: CheckedContinuation<Element?, Never>?
    private var closed = false

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Enqueues an element; returns false if the channel was closed (the element is dropped).
    @discardableResult
    public func send(_ item: Element) async -> Bool {
        while items.count >= capacity, !closed {
            await withCheckedContinuation { waitingSenders.append($0) }
        }
        guard !closed else { return false }
        if let receiver = waitingReceiver {
            waitingReceiver = nil
            receiver.resume(returning: item)
        } else {
            items.append(item)
        }
        return true
    }

    /// The next element, or nil once the channel is closed and drained.
    public func receive() async -> Element? {
        if !items.isEmpty {
            // The queue holds a handful of batches, so removing from the front is cheap, and a
            // consumed batch must not stay referenced.
            let item = items.removeFirst()
            if !waitingSenders.isEmpty { waitingSenders.removeFirst().resume() }
            return item
        }
        if closed { return nil }
        return await withCheckedContinuation { waitingReceiver = $0 }
    }

    /// No more elements will be accepted; pending receivers get nil after the queue drains.
    public func close() {
        closed = true
        waitingReceiver?.resume(returning: nil)
        waitingReceiver = nil
        for s in waitingSenders { s.resume() }
        waitingSenders = []
    }
}
