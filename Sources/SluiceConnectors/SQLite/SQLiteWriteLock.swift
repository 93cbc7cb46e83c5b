/// One writer per SQLite file within the process. Pipelines that load into the same database file
/// run concurrently, but a unit holds the write transaction for its whole length; without this,
/// the second pipeline would spin in SQLite's busy handler and fail after its timeout on a long
/// unit. Waiting here is free, and back-pressure stops the waiting pipeline's reader meanwhile.
actor SQLiteWriteLock {
    static let shared = SQLiteWriteLock()

    private var held: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func acquire(_ path: String) async {
        if held.insert(path).inserted { return }
        await withCheckedContinuation { waiters[path, default: []].append($0) }
    }

    func release(_ path: String) {
        if var queue = waiters[path], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[path] = queue
            next.resume()   // ownership passes straight to the next waiter
        } else {
            held.remove(path)
        }
    }
}
