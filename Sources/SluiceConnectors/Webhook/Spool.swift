import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SluiceCore

/// Where delivery stands in a spool: a segment and a byte offset in it.
public struct SpoolPosition: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var segment: Int
    public var offset: Int64
    public init(segment: Int, offset: Int64) { self.segment = segment; self.offset = offset }
    public init?(_ text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let s = Int(parts[0]), let o = Int64(parts[1]), s >= 0, o >= 0 else { return nil }
        self.init(segment: s, offset: o)
    }
    public var description: String { "\(segment):\(offset)" }
    public static func < (a: Self, b: Self) -> Bool { (a.segment, a.offset) < (b.segment, b.offset) }
}

/// A webhook endpoint's durable buffer: accepted requests are appended to segment files and
/// fsynced before they are answered; delivery reads them from the position the sink last
/// committed; a segment is deleted once everything in it is committed.
///
/// Appends are group-committed: one writer thread takes every frame waiting, writes them with
/// one `write` and makes them durable with one `fdatasync`, then answers them all. Under load many
/// requests share a sync, so throughput is bounded by the disk's bandwidth, not by its sync latency.
public final class Spool: @unchecked Sendable {
    public enum Refusal: Error, Sendable {
        /// Undelivered data is at its limit: the caller should retry later.
        case full(bytes: Int64, records: Int64)
        /// The spool could not write (disk full, I/O error) or is shutting down.
        case unavailable(String)
    }

    public let directory: String
    public let maxBytes: Int64
    public let maxRecords: Int64?
    public let segmentBytes: Int64
    public let keys: IdempotencyIndex

    private struct Segment { var number: Int; var size: Int64; var records: Int64; var keys: [String] }
    private struct Pending {
        var bytes: [UInt8]
        var records: Int
        var key: String?
        var continuation: CheckedContinuation<SpoolPosition, any Error>
    }

    private let lock = NSCondition()
    private var segments: [Segment] = []     // oldest first; the last one is appended to
    private var activeFD: Int32 = -1
    private var pending: [Pending] = []
    private var pendingBytes: Int64 = 0
    private var delivered = SpoolPosition(segment: 0, offset: 0)
    /// Records durable in the spool and not yet committed to the sink.
    private var undeliveredRecords: Int64 = 0
    private var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    private var closed = false
    private var lockFD: Int32 = -1
    private var writer: Thread?
    private var writerDone = false
    /// Problems found when the spool was opened (a damaged segment), for the log.
    public private(set) var notices: [String] = []

    public init(directory: String, maxBytes: Int64, maxRecords: Int64? = nil, segmentBytes: Int64 = 64 << 20, retention: Double = 86_400) throws {
        self.directory = directory
        self.maxBytes = maxBytes
        self.maxRecords = maxRecords
        self.segmentBytes = segmentBytes
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        lockFD = open(directory + "/LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw Self.error("cannot open \(directory)/LOCK: \(String(cString: strerror(errno)))") }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(lockFD)
            throw Self.error("another sluice process is using the spool \(directory)", fix: "stop the other `sluice serve` (or `sluice run`) of this pipeline first")
        }
        keys = try IdempotencyIndex(logPath: directory + "/keys.log", retention: retention)
        try scan()
        try openActive(creating: segments.isEmpty)
        delivered = SpoolPosition(segment: segments[0].number, offset: 0)
        undeliveredRecords = segments.reduce(0) { $0 + $1.records }
        let thread = Thread { [weak self] in self?.writeLoop() }
        thread.name = "sluice-spool"
        writer = thread
        thread.start()
    }

    deinit {
        if activeFD >= 0 { Glibc.close(activeFD) }
        if lockFD >= 0 { Glibc.close(lockFD) }
    }

    static func error(_ message: String, fix: String? = nil) -> SluiceError {
        SluiceError(.source, message, component: "webhook spool", fix: fix)
    }

    private func path(_ number: Int) -> String {
        let digits = String(number)
        return directory + "/" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".seg"
    }

    // MARK: Opening

    /// Finds the segments, checks every frame, cuts a torn tail, and learns the idempotency keys.
    private func scan() throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let numbers = names.compactMap { $0.hasSuffix(".seg") ? Int($0.dropLast(4)) : nil }.sorted()
        for number in numbers {
            var segment = Segment(number: number, size: 0, records: 0, keys: [])
            let fd = open(path(number), O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw Self.error("cannot open \(path(number)): \(String(cString: strerror(errno)))") }
            defer { Glibc.close(fd) }
            var st = stat()
            fstat(fd, &st)
            let fileSize = Int64(st.st_size)
            var offset: Int64 = 0
            while offset < fileSize {
                guard let (frame, next) = try Self.readFrame(fd, at: offset, fileSize: fileSize, headerOnly: true) else { break }
                segment.records += Int64(frame.recordCount)
                if let key = frame.idempotencyKey {
                    keys.restore(key, IdempotencyIndex.Entry(digest: frame.bodyDigest, status: frame.responseStatus,
                                                             body: frame.responseBody, receivedAt: frame.receivedAt))
                    segment.keys.append(key)
                }
                offset = next
            }
            if offset < fileSize, number != numbers.last {
                // Only the last segment is written to, so an earlier one was synced whole and every
                // frame in it was answered: this is damage, not a torn write. Keep the frames after
                // it; delivery stops there with an error naming the segment.
                notices.append("\(path(number)): the frame at offset \(offset) fails its checksum; the segment is damaged")
                offset = fileSize
            } else if offset < fileSize {
                // Never answered (the fsync that would have come after it did not): drop it.
                notices.append("\(path(number)): \(fileSize - offset) bytes after offset \(offset) are not a complete frame (a write cut short by a crash); removed")
                guard ftruncate(fd, off_t(offset)) == 0, fsync(fd) == 0 else { throw Self.error("cannot truncate \(path(number))") }
            }
            segment.size = offset
            segments.append(segment)
        }
    }

    /// Reads the frame at `offset`; nil at a torn or damaged frame.
    static func readFrame(_ fd: Int32, at offset: Int64, fileSize: Int64, headerOnly: Bool = false) throws -> (SpoolFrame, Int64)? {
        guard fileSize - offset >= Int64(SpoolFrame.headerBytes) else { return nil }
        var header = [UInt8](repeating: 0, count: SpoolFrame.headerBytes)
        guard try readFully(fd, &header, at: offset) else { return nil }
        let length = Int64(header[0]) | Int64(header[1]) << 8 | Int64(header[2]) << 16 | Int64(header[3]) << 24
        let crc = UInt32(header[4]) | UInt32(header[5]) << 8 | UInt32(header[6]) << 16 | UInt32(header[7]) << 24
        let start = offset + Int64(SpoolFrame.headerBytes)
        guard length > 0, length <= fileSize - start else { return nil }
        var payload = [UInt8](repeating: 0, count: Int(length))
        guard try readFully(fd, &payload, at: start), SpoolFrame.checksum(payload[...]) == crc,
              let frame = SpoolFrame.decode(payload[...], headerOnly: headerOnly) else { return nil }
        return (frame, start + length)
    }

    private static func readFully(_ fd: Int32, _ buffer: inout [UInt8], at offset: Int64) throws -> Bool {
        var done = 0
        let count = buffer.count
        while done < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0, errno == EINTR { continue }
            if n < 0 { throw error("cannot read the spool: \(String(cString: strerror(errno)))") }
            if n == 0 { return false }
            done += n
        }
        return true
    }

    private func openActive(creating: Bool) throws {
        if creating { segments.append(Segment(number: (segments.last?.number ?? 0) + 1, size: 0, records: 0, keys: [])) }
        let number = segments[segments.count - 1].number
        let fd = open(path(number), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.error("cannot open \(path(number)): \(String(cString: strerror(errno)))") }
        if creating { try syncDirectory() }
        if activeFD >= 0 { Glibc.close(activeFD) }
        activeFD = fd
    }

    /// A new segment's name must be durable before a frame in it is answered.
    private func syncDirectory() throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.error("cannot open \(directory)") }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw Self.error("cannot sync \(directory): \(String(cString: strerror(errno)))") }
    }

    // MARK: Appending

    /// Undelivered bytes and records (accepted, not yet committed to the sink).
    public var backlog: (bytes: Int64, records: Int64) {
        lock.lock(); defer { lock.unlock() }
        return backlogLocked()
    }

    private func backlogLocked() -> (bytes: Int64, records: Int64) {
        var bytes = pendingBytes - delivered.offset
        for s in segments where s.number >= delivered.segment { bytes += s.size }
        return (bytes, undeliveredRecords + pending.reduce(0) { $0 + Int64($1.records) })
    }

    /// Appends a frame and returns once it is on disk (after fsync), with the position after it.
    public func append(_ frame: SpoolFrame) async throws -> SpoolPosition {
        let bytes = frame.encoded()
        return try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            defer { lock.unlock() }
            if closed { return continuation.resume(throwing: Refusal.unavailable("the server is shutting down")) }
            let (b, r) = backlogLocked()
            if b + Int64(bytes.count) > maxBytes || maxRecords.map({ r + Int64(frame.recordCount) > $0 }) ?? false {
                return continuation.resume(throwing: Refusal.full(bytes: b, records: r))
            }
            pending.append(Pending(bytes: bytes, records: frame.recordCount, key: frame.idempotencyKey, continuation: continuation))
            pendingBytes += Int64(bytes.count)
            lock.signal()
        }
    }

    private func writeLoop() {
        while true {
            lock.lock()
            while pending.isEmpty, !closed { lock.wait() }
            if pending.isEmpty, closed {
                writerDone = true
                lock.broadcast()
                lock.unlock()
                return
            }
            let batch = pending
            pending = []
            lock.unlock()
            // A batch that crosses the segment size goes on in the next segment, so a segment
            // passes `segmentBytes` by at most one frame however many requests wait at once.
            var start = 0
            while start < batch.count { start = commit(batch, from: start) }
        }
    }

    /// Writes and syncs frames of `batch` from `start` into the active segment (rolling it over
    /// first when it is full), answers them, and returns where the next segment's frames begin.
    private func commit(_ batch: [Pending], from start: Int) -> Int {
        lock.lock()
        var failure: String?
        if segments[segments.count - 1].size >= segmentBytes {
            do { try openActive(creating: true) } catch { failure = "\(error)" }
        }
        let fd = activeFD
        let durableSize = segments[segments.count - 1].size
        lock.unlock()

        var end = start, size = durableSize
        repeat {
            size += Int64(batch[end].bytes.count)
            end += 1
        } while end < batch.count && size < segmentBytes
        let chunk = batch[start..<end]
        if failure == nil {
            var buffer: [UInt8] = []
            buffer.reserveCapacity(Int(size - durableSize))
            for p in chunk { buffer += p.bytes }
            failure = Self.writeAll(fd, buffer)
            if failure == nil, fdatasync(fd) != 0 { failure = "fdatasync: \(String(cString: strerror(errno)))" }
            // Whatever part of a failed write reached the file was never acknowledged.
            if failure != nil { _ = ftruncate(fd, off_t(durableSize)) }
        }

        lock.lock()
        var positions: [SpoolPosition] = []
        if failure == nil {
            var s = segments[segments.count - 1]
            for p in chunk {
                s.size += Int64(p.bytes.count)
                s.records += Int64(p.records)
                undeliveredRecords += Int64(p.records)
                if let key = p.key { s.keys.append(key) }
                positions.append(SpoolPosition(segment: s.number, offset: s.size))
            }
            segments[segments.count - 1] = s
        }
        pendingBytes -= chunk.reduce(0) { $0 + Int64($1.bytes.count) }
        let woken = waiters
        waiters = [:]
        lock.unlock()
        for (i, p) in chunk.enumerated() {
            if let failure {
                p.continuation.resume(throwing: Refusal.unavailable("the spool cannot write: \(failure)"))
            } else {
                p.continuation.resume(returning: positions[i])
            }
        }
        for w in woken.values { w.resume() }
        return end
    }

    private static func writeAll(_ fd: Int32, _ buffer: [UInt8]) -> String? {
        var done = 0
        while done < buffer.count {
            let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + done, buffer.count - done) }
            if n < 0, errno == EINTR { continue }
            if n < 0 { return "write: \(String(cString: strerror(errno)))" }
            done += n
        }
        return nil
    }

    // MARK: Delivery

    /// The end of what is durable.
    public var end: SpoolPosition {
        lock.lock(); defer { lock.unlock() }
        let last = segments[segments.count - 1]
        return SpoolPosition(segment: last.number, offset: last.size)
    }

    /// Where delivery starts: after `committed` (the sink's saved position), or at the oldest
    /// segment. Segments wholly before it are deleted.
    public func resume(after committed: SpoolPosition?) throws -> SpoolPosition {
        let (oldest, end) = lock.withLock {
            (SpoolPosition(segment: segments[0].number, offset: 0), SpoolPosition(segment: segments[segments.count - 1].number, offset: segments[segments.count - 1].size))
        }
        var start = committed.map { max($0, oldest) } ?? oldest
        if start > end {
            // The sink saw a position this spool never reached: the directory was emptied or
            // replaced. Delivering what is here is the only way not to lose it.
            notices.append("\(directory): the sink's saved position \(start) is past the end of the spool (\(end)); the spool was replaced, delivering it from its start")
            start = oldest
        }
        var before: Int64 = 0   // records of the start segment that precede `start`
        if start.offset > 0 {
            let fd = open(path(start.segment), O_RDONLY | O_CLOEXEC)
            if fd >= 0 {
                defer { Glibc.close(fd) }
                var offset: Int64 = 0
                while offset < start.offset, let (frame, next) = try Self.readFrame(fd, at: offset, fileSize: start.offset, headerOnly: true) {
                    before += Int64(frame.recordCount)
                    offset = next
                }
            }
        }
        lock.withLock {
            delivered = start
            undeliveredRecords = segments.filter { $0.number >= start.segment }.reduce(0) { $0 + $1.records } - before
        }
        try deleteDelivered()
        return start
    }

    /// Frames from `position` up to about `maxBytes`, and the position after the last one.
    public func read(from position: SpoolPosition, maxBytes: Int) throws -> (frames: [SpoolFrame], next: SpoolPosition) {
        var position = position
        var frames: [SpoolFrame] = []
        var bytes = 0
        while bytes < maxBytes {
            lock.lock()
            let current = segments.first { $0.number == position.segment }
            let later = segments.first { $0.number > position.segment }?.number
            lock.unlock()
            guard let current else {
                guard let later else { break }
                position = SpoolPosition(segment: later, offset: 0)
                continue
            }
            if position.offset >= current.size {
                guard let later else { break }
                position = SpoolPosition(segment: later, offset: 0)
                continue
            }
            let fd = open(path(current.number), O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw Self.error("cannot open \(path(current.number)): \(String(cString: strerror(errno)))") }
            defer { Glibc.close(fd) }
            while bytes < maxBytes, position.offset < current.size {
                guard let (frame, next) = try Self.readFrame(fd, at: position.offset, fileSize: current.size) else {
                    throw Self.error("\(path(current.number)) is damaged at offset \(position.offset): the frame there fails its checksum",
                                     fix: "the disk corrupted data that was acknowledged; move the segment aside to deliver the rest")
                }
                bytes += frame.body.count + 64
                frames.append(frame)
                position.offset = next
            }
        }
        return (frames, position)
    }

    /// Waits until data beyond `position` is durable, the timeout passes, or the spool closes.
    public func waitForData(after position: SpoolPosition, timeout: Double) async {
        let id = UUID()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let ready = self.lock.withLock {
                        let last = self.segments[self.segments.count - 1]
                        if SpoolPosition(segment: last.number, offset: last.size) > position || self.closed { return true }
                        self.waiters[id] = c
                        return false
                    }
                    if ready { c.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(timeout))
                self.lock.withLock { self.waiters.removeValue(forKey: id) }?.resume()
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// The sink committed everything up to `position`: `records` more records than before.
    public func release(upTo position: SpoolPosition, records: Int64) throws {
        lock.withLock {
            guard position > delivered else { return }
            delivered = position
            undeliveredRecords = max(0, undeliveredRecords - records)
        }
        try deleteDelivered()
    }

    /// Deletes segments that hold nothing undelivered; their idempotency keys are kept first.
    private func deleteDelivered() throws {
        lock.lock()
        let doomed = segments.dropLast().filter { $0.number < delivered.segment }
        lock.unlock()
        guard !doomed.isEmpty else { return }
        try keys.persist(doomed.flatMap(\.keys))
        for s in doomed { unlink(path(s.number)) }
        lock.lock()
        segments.removeAll { s in doomed.contains { $0.number == s.number } }
        lock.unlock()
    }

    /// Refuses new appends, writes those already waiting, and stops the writer thread.
    public func close() {
        lock.lock()
        closed = true
        lock.broadcast()
        while !writerDone, writer != nil { lock.wait() }
        let woken = waiters
        waiters = [:]
        // Another process (or a new Spool here) may use the directory from now on.
        if lockFD >= 0 { Glibc.close(lockFD); lockFD = -1 }
        lock.unlock()
        for w in woken.values { w.resume() }
    }
}
