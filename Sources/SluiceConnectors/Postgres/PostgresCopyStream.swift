import NIOCore
import SluiceCore

/// One `COPY … FROM STDIN` kept open across many batches of a unit.
///
/// A COPY per batch makes the sink wait for the server to parse every batch before it encodes the
/// next, so Sluice and the server take turns. With one COPY per unit, the connection task sends
/// batch k while the writer encodes batch k+1 and the server parses in parallel; the queue of two
/// chunks bounds memory. Other statements cannot run on the connection while it is open: `finish`
/// it first.
final class PostgresCopyStream: Sendable {
    private let chunks = BoundedChannel<[UInt8]>(capacity: 2)
    private let task: Task<Void, any Error>

    init(client: PostgresClient, table: String, columns: [String]) {
        let chunks = self.chunks
        task = Task {
            do {
                try await client.copy(into: table, columns: columns) { writer in
                    while let chunk = await chunks.receive() { try await writer.write(ByteBuffer(bytes: chunk)) }
                }
            } catch {
                // Wake a sender waiting for room: it then reports this error.
                await chunks.close()
                throw error
            }
        }
    }

    /// Queues COPY text rows; suspends while two chunks wait. Throws the COPY's error if the
    /// server refused earlier data or the connection dropped.
    func send(_ chunk: [UInt8]) async throws {
        guard await chunks.send(chunk) else {
            try await task.value
            throw SluiceError(.internal, "the COPY stream ended before its data did", component: PostgresSink.component)
        }
    }

    /// Ends the COPY and waits until the server has taken every row (or refused them).
    func finish() async throws {
        await chunks.close()
        try await task.value
    }

    /// Abandons the COPY (the transaction around it is rolled back by the caller).
    func abort() async {
        task.cancel()
        await chunks.close()
        _ = try? await task.value
    }
}
