#if canImport(Glibc)
import Glibc
#endif
import CZlib
import CZstd
import SluiceCore

/// Writes a file through an optional compressor (gzip or zstd), buffering writes. `finish()`
/// flushes, fsyncs and closes; nothing is durable before that.
public final class FileWriter {
    public let path: String
    private let fd: Int32
    private let compression: Compression
    private var pending: [UInt8] = []
    private var out: [UInt8] = []
    private var zs = z_stream()
    private var cctx: OpaquePointer?
    public private(set) var bytesWritten: Int64 = 0
    public private(set) var uncompressedBytes: Int64 = 0
    private var finished = false

    public init(path: String, compression: Compression) throws {
        self.path = path
        self.compression = compression
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SluiceError(.sink, "cannot create file: \(String(cString: strerror(errno)))", location: path) }
        switch compression {
        case .none: break
        case .gzip:
            // 15 + 16: a gzip (not zlib) header; level 6 is gzip's own default.
            guard deflateInit2_(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw SluiceError(.sink, "cannot start gzip compression", location: path)
            }
        case .zstd:
            cctx = ZSTD_createCCtx()
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3)
        }
    }

    deinit {
        if !finished { close(fd) }
        if compression == .gzip { deflateEnd(&zs) }
        if let cctx { ZSTD_freeCCtx(cctx) }
    }

    public func write(_ bytes: [UInt8]) throws {
        if compression == .none, bytes.count >= 1 << 16 {
            // Big enough to write as it is: no copy, and `pending` keeps no room for it.
            if !pending.isEmpty { try flush(final: false) }
            try writeAll(bytes)
            uncompressedBytes += Int64(bytes.count)
            return
        }
        pending.append(contentsOf: bytes)
        uncompressedBytes += Int64(bytes.count)
        if pending.count >= 1 << 20 { try flush(final: false) }
    }

    private func flush(final: Bool) throws {
        switch compression {
        case .none:
            try writeAll(pending)
        case .gzip:
            try pending.withUnsafeMutableBytes { inp in
                zs.next_in = inp.baseAddress?.assumingMemoryBound(to: Bytef.self)
                zs.avail_in = uInt(inp.count)
                repeat {
                    out = [UInt8](repeating: 0, count: 1 << 18)
                    let rc = out.withUnsafeMutableBytes { o -> Int32 in
                        zs.next_out = o.baseAddress!.assumingMemoryBound(to: Bytef.self)
                        zs.avail_out = uInt(o.count)
                        return deflate(&zs, final ? Z_FINISH : Z_NO_FLUSH)
                    }
                    guard rc != Z_STREAM_ERROR else { throw SluiceError(.sink, "gzip compression failed", location: path) }
                    try writeAll(Array(out[0..<(out.count - Int(zs.avail_out))]))
                } while zs.avail_out == 0 || (final && zs.avail_in > 0)
            }
        case .zstd:
            try pending.withUnsafeBytes { inp in
                var ib = ZSTD_inBuffer(src: inp.baseAddress, size: inp.count, pos: 0)
                var remaining = 0
                repeat {
                    out = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
                    let produced = try out.withUnsafeMutableBytes { o -> Int in
                        var ob = ZSTD_outBuffer(dst: o.baseAddress, size: o.count, pos: 0)
                        remaining = ZSTD_compressStream2(cctx, &ob, &ib, final ? ZSTD_e_end : ZSTD_e_continue)
                        if ZSTD_isError(remaining) != 0 { throw SluiceError(.sink, "zstd compression failed", location: path) }
                        return ob.pos
                    }
                    try writeAll(Array(out[0..<produced]))
                } while ib.pos < ib.size || (final && remaining != 0)
            }
        }
        pending.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { p in
            var off = 0
            while off < p.count {
                let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SluiceError(.sink, "cannot write file: \(String(cString: strerror(errno)))", location: path,
                                      fix: errno == ENOSPC ? "free disk space" : nil, retryable: errno == ENOSPC)
                }
                off += n
            }
        }
        bytesWritten += Int64(bytes.count)
    }

    /// Makes what was written so far durable, keeping the file open (uncompressed files only:
    /// a compressed stream is only complete at `finish()`).
    public func sync() throws {
        guard compression == .none else { return }
        try flush(final: false)
        guard fsync(fd) == 0 else { throw SluiceError(.sink, "cannot sync file: \(String(cString: strerror(errno)))", location: path, retryable: true) }
    }

    /// Flushes everything, fsyncs and closes the file.
    public func finish() throws {
        guard !finished else { return }
        try flush(final: true)
        finished = true
        let ok = fsync(fd) == 0
        close(fd)
        guard ok else { throw SluiceError(.sink, "cannot sync file: \(String(cString: strerror(errno)))", location: path, retryable: true) }
    }

    /// Closes without caring for the content (the file is about to be deleted).
    public func abandon() {
        guard !finished else { return }
        finished = true
        close(fd)
    }
}
