#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SluiceCore

/// A pull-based stream of bytes: a file, optionally through a decompressor.
public protocol ByteReader: AnyObject {
    /// Appends up to about `max` more bytes to `buffer`; returns how many (0 = end of stream).
    func read(into buffer: inout [UInt8], max: Int) throws -> Int
    /// Bytes consumed from the underlying file so far (compressed size for compressed input).
    var rawBytesRead: Int64 { get }
}

/// Compression of a file, detected from its first bytes or configured.
public enum Compression: String, Sendable, CaseIterable {
    case none, gzip, zstd

    /// By magic number: gzip `1f 8b`, zstd `28 b5 2f fd`.
    public static func detect(_ head: some Collection<UInt8>) -> Compression {
        let b = Array(head.prefix(4))
        if b.count >= 2, b[0] == 0x1f, b[1] == 0x8b { return .gzip }
        if b.count >= 4, b[0] == 0x28, b[1] == 0xb5, b[2] == 0x2f, b[3] == 0xfd { return .zstd }
        return .none
    }

    public var fileExtension: String {
        switch self { case .none: "" case .gzip: ".gz" case .zstd: ".zst" }
    }
}

/// Reads a local file with plain `read(2)` in large chunks. `observer` sees every raw chunk (the
/// files source hashes content while it parses, so a file is read once).
public final class FileReader: ByteReader {
    private let fd: Int32
    public let path: String
    public private(set) var rawBytesRead: Int64 = 0
    private let observer: ((UnsafeRawBufferPointer) -> Void)?
    /// Bytes peeked for magic-number detection, handed out before further reads.
    private var pending: [UInt8] = []

    public init(path: String, observer: ((UnsafeRawBufferPointer) -> Void)? = nil) throws {
        self.path = path
        self.observer = observer
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SluiceError(.source, "cannot open file: \(String(cString: strerror(errno)))", location: path)
        }
    }

    deinit { close(fd) }

    /// The first `n` bytes without consuming them.
    public func peek(_ n: Int) throws -> [UInt8] {
        while pending.count < n {
            var chunk: [UInt8] = []
            if try rawRead(into: &chunk, max: n - pending.count) == 0 { break }
            pending += chunk
        }
        return Array(pending.prefix(n))
    }

    public func read(into buffer: inout [UInt8], max: Int) throws -> Int {
        if !pending.isEmpty {
            let n = pending.count
            buffer.append(contentsOf: pending)
            pending.removeAll()
            return n
        }
        return try rawRead(into: &buffer, max: max)
    }

    private var scratch: [UInt8] = []

    private func rawRead(into buffer: inout [UInt8], max: Int) throws -> Int {
        // Read into a reused scratch array (allocated once), then append: appending a generic
        // zero sequence and trimming it costs far more than one extra memcpy.
        if scratch.count < max { scratch = [UInt8](repeating: 0, count: max) }
        let got = scratch.withUnsafeMutableBytes { p -> Int in
            var n: Int
            repeat { n = Glibc.read(fd, p.baseAddress!, max) } while n < 0 && errno == EINTR
            return n
        }
        guard got >= 0 else {
            throw SluiceError(.source, "read failed: \(String(cString: strerror(errno)))", location: path, retryable: true)
        }
        if got > 0 {
            rawBytesRead += Int64(got)
            scratch.withUnsafeBytes { p in
                let chunk = UnsafeRawBufferPointer(rebasing: p[0..<got])
                observer?(chunk)
                buffer.append(contentsOf: chunk)
            }
        }
        return got
    }
}

/// Opens a file for reading, adding a decompressor when the file (or `compression`) says so.
public func openByteReader(path: String, compression: Compression? = nil,
                           observer: ((UnsafeRawBufferPointer) -> Void)? = nil) throws -> ByteReader {
    let file = try FileReader(path: path, observer: observer)
    let kind = try compression ?? Compression.detect(file.peek(4))
    switch kind {
    case .none: return file
    case .gzip: return try GzipReader(file, location: path)
    case .zstd: return try ZstdReader(file, location: path)
    }
}

/// Bytes already in memory (an HTTP response body, a block of a file) as a `ByteReader`.
public final class MemoryReader: ByteReader {
    private var bytes: [UInt8]
    private var offset = 0
    private let total: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        total = bytes.count
    }

    public func read(into buffer: inout [UInt8], max: Int) throws -> Int {
        if offset == 0, buffer.isEmpty, !bytes.isEmpty {
            // A parser's first read takes the whole array, without copying it.
            swap(&buffer, &bytes)
            offset = total
            return total
        }
        let n = min(max, bytes.count - offset)
        guard n > 0 else { return 0 }
        buffer.append(contentsOf: bytes[offset..<(offset + n)])
        offset += n
        return n
    }

    public var rawBytesRead: Int64 { Int64(offset) }
}

extension Array<UInt8> {
    /// Drops the `n` bytes a reader has parsed. All of them: the buffer is let go rather than
    /// emptied, since `removeFirst` would first copy a buffer shared with its owner (a block's
    /// bytes, handed to its parser by `MemoryReader`).
    mutating func removeConsumed(_ n: Int) {
        if n == count { self = [] } else { removeFirst(n) }
    }
}
