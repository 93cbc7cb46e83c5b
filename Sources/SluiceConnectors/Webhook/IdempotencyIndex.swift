import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SluiceCore

/// Idempotency keys seen by a webhook endpoint, with the answer each got, for `retention`.
///
/// A key's answer is durable with its records: it is written in the same spool frame. When a
/// delivered segment is deleted, the keys in it move to `keys.log` first, so a repeat within the
/// retention window is recognised after any restart.
public final class IdempotencyIndex: @unchecked Sendable {
    public struct Entry: Sendable {
        public var digest: [UInt8]
        public var status: Int
        public var body: [UInt8]
        /// µs since the epoch.
        public var receivedAt: Int64

        public init(digest: [UInt8], status: Int, body: [UInt8], receivedAt: Int64) {
            self.digest = digest
            self.status = status
            self.body = body
            self.receivedAt = receivedAt
        }
    }

    public enum Lookup: Sendable {
        /// First time: the caller handles the request and then calls `complete` or `cancel`.
        case new
        /// The same key is being handled by another request right now.
        case inFlight
        /// Seen before with the same body: answer this again.
        case replay(status: Int, body: [UInt8])
        /// Seen before with another body.
        case mismatch
    }

    public let retention: Double
    /// Keys remembered at most; the oldest go first beyond it.
    public let capacity: Int
    private let logPath: String
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var order: [(key: String, at: Int64)] = []   // oldest first, for expiry
    private var orderStart = 0
    private var inFlight: Set<String> = []

    init(logPath: String, retention: Double, capacity: Int = 2_000_000) throws {
        self.logPath = logPath
        self.retention = retention
        self.capacity = capacity
        try load()
    }

    public func reserve(_ key: String, digest: [UInt8], now: Int64 = Temporal.nowMicros()) -> Lookup {
        lock.lock(); defer { lock.unlock() }
        expire(now: now)
        if let e = entries[key] { return e.digest == digest ? .replay(status: e.status, body: e.body) : .mismatch }
        if inFlight.contains(key) { return .inFlight }
        inFlight.insert(key)
        return .new
    }

    /// The request was stored and answered with `entry`.
    public func complete(_ key: String, _ entry: Entry) {
        lock.lock(); defer { lock.unlock() }
        inFlight.remove(key)
        insert(key, entry)
    }

    /// The request was not stored: the key may be used again.
    public func cancel(_ key: String) {
        lock.lock(); defer { lock.unlock() }
        inFlight.remove(key)
    }

    func restore(_ key: String, _ entry: Entry) {
        lock.lock(); defer { lock.unlock() }
        guard Double(Temporal.nowMicros() - entry.receivedAt) / 1e6 < retention else { return }
        insert(key, entry)
    }

    private func insert(_ key: String, _ entry: Entry) {
        if entries.updateValue(entry, forKey: key) == nil { order.append((key, entry.receivedAt)) }
        while entries.count > capacity, orderStart < order.count {
            entries.removeValue(forKey: order[orderStart].key)
            orderStart += 1
        }
    }

    private func expire(now: Int64) {
        let cutoff = now - Int64(retention * 1e6)
        while orderStart < order.count, order[orderStart].at < cutoff {
            let key = order[orderStart].key
            if let e = entries[key], e.receivedAt < cutoff { entries.removeValue(forKey: key) }
            orderStart += 1
        }
        if orderStart > 4096, orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }

    // MARK: keys.log

    /// Appends these keys' entries to the log and syncs it (before their segment is deleted).
    func persist(_ keys: [String]) throws {
        lock.lock()
        let rows = keys.compactMap { k in entries[k].map { (k, $0) } }
        lock.unlock()
        guard !rows.isEmpty else { return }
        var bytes: [UInt8] = []
        for (key, entry) in rows { bytes += Self.encode(key, entry) }
        let fd = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Spool.error("cannot open \(logPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        guard written == bytes.count, fdatasync(fd) == 0 else { throw Spool.error("cannot write \(logPath): \(String(cString: strerror(errno)))") }
    }

    private static func encode(_ key: String, _ e: Entry) -> [UInt8] {
        var p: [UInt8] = []
        let k = Array(key.utf8.prefix(1024))
        p.appendLE(UInt64(bitPattern: e.receivedAt))
        p.appendLE(UInt16(k.count)); p += k
        p += e.digest.prefix(16) + [UInt8](repeating: 0, count: max(0, 16 - e.digest.count))
        p.appendLE(UInt16(e.status))
        p.appendLE(UInt32(e.body.count)); p += e.body
        var out: [UInt8] = []
        out.appendLE(UInt32(p.count))
        out.appendLE(SpoolFrame.checksum(p[...]))
        return out + p
    }

    /// Reads the log, keeps the entries still within retention, and rewrites it without the rest.
    private func load() throws {
        guard let data = FileManager.default.contents(atPath: logPath) else { return }
        let bytes = [UInt8](data)
        var at = 0
        var kept: [(String, Entry)] = []
        let now = Temporal.nowMicros()
        while bytes.count - at >= 8 {
            var header = LittleEndianReader(bytes[at..<(at + 8)])
            guard let length = header.u32(), let crc = header.u32(), Int(length) <= bytes.count - at - 8 else { break }
            let payload = bytes[(at + 8)..<(at + 8 + Int(length))]
            guard SpoolFrame.checksum(payload) == crc else { break }
            var r = LittleEndianReader(payload)
            guard let t = r.u64(), let kl = r.u16(), let k = r.bytes(Int(kl)), let d = r.bytes(16), let s = r.u16(),
                  let bl = r.u32(), let b = r.bytes(Int(bl)) else { break }
            let entry = Entry(digest: d, status: Int(s), body: b, receivedAt: Int64(bitPattern: t))
            if Double(now - entry.receivedAt) / 1e6 < retention { kept.append((String(decoding: k, as: UTF8.self), entry)) }
            at += 8 + Int(length)
        }
        for (k, e) in kept.sorted(by: { $0.1.receivedAt < $1.1.receivedAt }) { insert(k, e) }
        // Compact: expired entries and a torn tail go.
        var out: [UInt8] = []
        for (k, e) in kept { out += Self.encode(k, e) }
        let temp = logPath + ".tmp"
        guard FileManager.default.createFile(atPath: temp, contents: Data(out)) else { throw Spool.error("cannot write \(temp)") }
        let fd = open(temp, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(temp, logPath) == 0 else { throw Spool.error("cannot replace \(logPath)") }
    }
}
