import CZlib
import SluiceCore

/// One accepted request as the spool keeps it: the raw body (parsed again on delivery, so the
/// spool holds exactly what the caller sent), the records in it that were answered as invalid
/// and are not to be delivered, and what the caller was told (for a repeated Idempotency-Key).
///
/// On disk: `[u32 payload length][u32 CRC-32 of payload][payload]`, little-endian. A torn or
/// damaged frame at the end of the last segment (a crash during a write, before its fsync and so
/// before any answer) is cut off when the spool opens.
public struct SpoolFrame: Sendable, Equatable {
    public enum BodyFormat: UInt8, Sendable { case ndjson = 0, json = 1 }

    public var format: BodyFormat
    /// When the request was received, µs since the epoch (lag metrics).
    public var receivedAt: Int64
    /// Records delivered from this frame (the body's records minus `rejectedOrigins`).
    public var recordCount: Int
    public var idempotencyKey: String?
    /// SHA-256 of the body, first 16 bytes: a key reused with another body is refused.
    public var bodyDigest: [UInt8]
    /// The status and body the request was answered with.
    public var responseStatus: Int
    public var responseBody: [UInt8]
    /// Origins (NDJSON line numbers, array positions) of the records left out.
    public var rejectedOrigins: [Int]
    public var body: [UInt8]

    static let version: UInt8 = 1
    static let headerBytes = 8

    public init(format: BodyFormat, receivedAt: Int64, recordCount: Int, idempotencyKey: String?, bodyDigest: [UInt8],
                responseStatus: Int, responseBody: [UInt8], rejectedOrigins: [Int], body: [UInt8]) {
        self.format = format
        self.receivedAt = receivedAt
        self.recordCount = recordCount
        self.idempotencyKey = idempotencyKey
        self.bodyDigest = bodyDigest
        self.responseStatus = responseStatus
        self.responseBody = responseBody
        self.rejectedOrigins = rejectedOrigins
        self.body = body
    }

    /// The frame with its length and checksum, ready to append.
    public func encoded() -> [UInt8] {
        // One buffer: the length and checksum are filled in once the payload after them is written.
        var p = [UInt8](repeating: 0, count: Self.headerBytes)
        let key = Array((idempotencyKey ?? "").utf8.prefix(1024))
        p.reserveCapacity(Self.headerBytes + 64 + key.count + responseBody.count + rejectedOrigins.count * 4 + body.count)
        p.append(Self.version)
        p.append(format.rawValue)
        p.appendLE(UInt64(bitPattern: receivedAt))
        p.appendLE(UInt32(recordCount))
        p.appendLE(UInt16(key.count)); p += key
        var digest = Array(bodyDigest.prefix(16)); digest += [UInt8](repeating: 0, count: 16 - digest.count)
        p += digest
        p.appendLE(UInt16(responseStatus))
        p.appendLE(UInt32(responseBody.count)); p += responseBody
        p.appendLE(UInt32(rejectedOrigins.count))
        for o in rejectedOrigins { p.appendLE(UInt32(o)) }
        p.appendLE(UInt32(body.count)); p += body
        let length = UInt32(p.count - Self.headerBytes), crc = Self.checksum(p[Self.headerBytes...])
        for i in 0..<4 {
            p[i] = UInt8(truncatingIfNeeded: length >> (8 * i))
            p[4 + i] = UInt8(truncatingIfNeeded: crc >> (8 * i))
        }
        return p
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
    }

    /// Decodes a payload whose checksum matched; nil when its layout is inconsistent.
    static func decode(_ p: ArraySlice<UInt8>, headerOnly: Bool = false) -> SpoolFrame? {
        var r = LittleEndianReader(p)
        guard let version = r.u8(), version == Self.version, let f = r.u8(), let format = BodyFormat(rawValue: f),
              let received = r.u64(), let count = r.u32(), let keyLength = r.u16(), let key = r.bytes(Int(keyLength)),
              let digest = r.bytes(16), let status = r.u16(), let responseLength = r.u32(), let response = r.bytes(Int(responseLength)),
              let rejectedCount = r.u32(), rejectedCount <= r.remaining / 4 else { return nil }
        var rejected: [Int] = []
        rejected.reserveCapacity(Int(rejectedCount))
        for _ in 0..<rejectedCount { guard let o = r.u32() else { return nil }; rejected.append(Int(o)) }
        guard let bodyLength = r.u32(), Int(bodyLength) == r.remaining else { return nil }
        let body = headerOnly ? [] : r.bytes(Int(bodyLength)) ?? []
        return SpoolFrame(format: format, receivedAt: Int64(bitPattern: received), recordCount: Int(count),
                          idempotencyKey: keyLength == 0 ? nil : String(decoding: key, as: UTF8.self), bodyDigest: digest,
                          responseStatus: Int(status), responseBody: response, rejectedOrigins: rejected, body: body)
    }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }
}

/// Bounds-checked little-endian reads: a damaged frame yields nil, never a trap.
struct LittleEndianReader {
    private let bytes: ArraySlice<UInt8>
    private var at: Int
    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes; at = bytes.startIndex }
    var remaining: Int { bytes.endIndex - at }

    mutating func bytes(_ n: Int) -> [UInt8]? {
        guard n >= 0, n <= remaining else { return nil }
        defer { at += n }
        return Array(bytes[at..<(at + n)])
    }
    private mutating func int<T: FixedWidthInteger>(_: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard size <= remaining else { return nil }
        var v: T = 0
        for i in 0..<size { v |= T(bytes[at + i]) << (8 * i) }
        at += size
        return v
    }
    mutating func u8() -> UInt8? { int(UInt8.self) }
    mutating func u16() -> UInt16? { int(UInt16.self) }
    mutating func u32() -> UInt32? { int(UInt32.self) }
    mutating func u64() -> UInt64? { int(UInt64.self) }
}
