import CZlib
import CZstd
import SluiceCore

/// Streaming gzip decompression (zlib `inflate`), including multi-member files as written by
/// `cat a.gz b.gz`. A truncated or corrupt stream is an error naming the file, never a silent stop.
public final class GzipReader: ByteReader {
    private let inner: ByteReader
    private let location: String
    private var stream = z_stream()
    private var input: [UInt8] = []
    private var inputOffset = 0
    private var finished = false
    private var memberDone = false
    public var rawBytesRead: Int64 { inner.rawBytesRead }

    public init(_ inner: ByteReader, location: String) throws {
        self.inner = inner
        self.location = location
        // 15 + 32: zlib or gzip header, detected automatically.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw SluiceError(.source, "cannot start gzip decompression", location: location)
        }
    }

    deinit { inflateEnd(&stream) }

    private var output = DecodedOutput()

    public func read(into buffer: inout [UInt8], max: Int) throws -> Int {
        guard !finished else { return 0 }
        let start = 0
        var produced = 0
        output.reserve(max)
        defer { output.append(produced, to: &buffer) }
        while produced == 0 {
            if inputOffset == input.count {
                if try !refill(&input, &inputOffset, from: inner) {
                    if memberDone || (stream.total_in == 0 && stream.total_out == 0) { finished = true; return 0 }
                    throw SluiceError(.parse, "gzip data is truncated (the file ends inside a compressed block)",
                                      location: location, fix: "re-create or re-download the file; it is incomplete")
                }
                if memberDone {
                    // Another gzip member follows (concatenated .gz files).
                    inflateReset(&stream)
                    memberDone = false
                }
            }
            let status: Int32 = input.withUnsafeMutableBytes { inp in
                output.bytes.withUnsafeMutableBytes { out in
                    stream.next_in = inp.baseAddress!.assumingMemoryBound(to: Bytef.self) + inputOffset
                    stream.avail_in = uInt(inp.count - inputOffset)
                    stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self) + start + produced
                    stream.avail_out = uInt(max - produced)
                    let s = inflate(&stream, Z_NO_FLUSH)
                    produced = max - Int(stream.avail_out)
                    inputOffset = inp.count - Int(stream.avail_in)
                    return s
                }
            }
            switch status {
            case Z_OK, Z_BUF_ERROR: continue
            case Z_STREAM_END:
                // Another member may follow in the bytes already read (`cat a.gz b.gz`).
                if inputOffset < input.count { inflateReset(&stream) } else { memberDone = true }
                if produced > 0 { return produced }
            default:
                let msg = stream.msg.map { String(cString: $0) } ?? "code \(status)"
                throw SluiceError(.parse, "gzip data is corrupt: \(msg)", location: location,
                                  fix: "check the file with `gzip -t`; it is damaged")
            }
        }
        return produced
    }
}

/// Streaming zstd decompression.
public final class ZstdReader: ByteReader {
    private let inner: ByteReader
    private let location: String
    private let dctx: OpaquePointer
    private var input: [UInt8] = []
    private var inputOffset = 0
    private var lastResult = 0
    private var finished = false
    public var rawBytesRead: Int64 { inner.rawBytesRead }

    public init(_ inner: ByteReader, location: String) throws {
        self.inner = inner
        self.location = location
        guard let ctx = ZSTD_createDCtx() else { throw SluiceError(.source, "cannot start zstd decompression", location: location) }
        dctx = ctx
    }

    deinit { ZSTD_freeDCtx(dctx) }

    private var output = DecodedOutput()

    public func read(into buffer: inout [UInt8], max: Int) throws -> Int {
        guard !finished else { return 0 }
        let start = 0
        var produced = 0
        output.reserve(max)
        defer { output.append(produced, to: &buffer) }
        while produced == 0 {
            if inputOffset == input.count {
                if try !refill(&input, &inputOffset, from: inner) {
                    if lastResult == 0 { finished = true; return 0 }
                    throw SluiceError(.parse, "zstd data is truncated (the file ends inside a frame)",
                                      location: location, fix: "re-create the file; it is incomplete")
                }
            }
            let result: Int = input.withUnsafeBytes { inp in
                output.bytes.withUnsafeMutableBytes { out in
                    var ib = ZSTD_inBuffer(src: inp.baseAddress, size: inp.count, pos: inputOffset)
                    var ob = ZSTD_outBuffer(dst: out.baseAddress! + start, size: max, pos: produced)
                    let r = ZSTD_decompressStream(dctx, &ob, &ib)
                    inputOffset = ib.pos
                    produced = ob.pos
                    return r
                }
            }
            if ZSTD_isError(result) != 0 {
                throw SluiceError(.parse, "zstd data is corrupt: \(String(cString: ZSTD_getErrorName(result)))",
                                  location: location, fix: "check the file with `zstd -t`; it is damaged")
            }
            lastResult = result
        }
        return produced
    }
}

/// Reads the next chunk of compressed input; false at the end of the file.
private func refill(_ input: inout [UInt8], _ offset: inout Int, from inner: ByteReader) throws -> Bool {
    input.removeAll(keepingCapacity: true)
    offset = 0
    return try inner.read(into: &input, max: 1 << 20) > 0
}

/// A reused scratch buffer decompressors write into before handing bytes to the caller.
private struct DecodedOutput {
    var bytes: [UInt8] = []

    mutating func reserve(_ n: Int) {
        if bytes.count < n { bytes = [UInt8](repeating: 0, count: n) }
    }

    func append(_ count: Int, to buffer: inout [UInt8]) {
        bytes.withUnsafeBytes { buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }
}
