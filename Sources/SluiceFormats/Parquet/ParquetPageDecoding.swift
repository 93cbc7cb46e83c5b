import CSnappy
import CZlib
import CZstd
import SluiceCore

/// Decoding pieces of Parquet pages: decompression, the RLE / bit-packing hybrid, PLAIN values.
/// Every read is bounds-checked against the page; a damaged page is an error, not a crash.
struct PageError: Error {
    var message: String
    /// The page is well formed but uses something this reader does not implement.
    var unsupported = false
}

enum ParquetDecompression {
    static func decompress(_ input: ArraySlice<UInt8>, codec: Int64, size: Int) throws -> [UInt8] {
        guard size >= 0, size <= 1 << 30 else { throw PageError(message: "page claims \(size) bytes uncompressed") }
        switch codec {
        case 0:
            return Array(input)
        case 1:
            var length = size
            var out = [UInt8](repeating: 0, count: size)
            let status = out.withUnsafeMutableBytes { o in
                input.withUnsafeBytes { i in
                    snappy_uncompress(i.baseAddress?.assumingMemoryBound(to: CChar.self), i.count,
                                      o.baseAddress?.assumingMemoryBound(to: CChar.self), &length)
                }
            }
            guard status == SNAPPY_OK, length == size else { throw PageError(message: "snappy data is corrupt") }
            return out
        case 6:
            var out = [UInt8](repeating: 0, count: size)
            let n = out.withUnsafeMutableBytes { o in input.withUnsafeBytes { i in ZSTD_decompress(o.baseAddress, o.count, i.baseAddress, i.count) } }
            guard ZSTD_isError(n) == 0, n == size else { throw PageError(message: "zstd data is corrupt") }
            return out
        case 2:
            var stream = z_stream()
            guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw PageError(message: "cannot start gzip decompression")
            }
            defer { inflateEnd(&stream) }
            var out = [UInt8](repeating: 0, count: size)
            var copy = Array(input)
            let status = copy.withUnsafeMutableBytes { i in
                out.withUnsafeMutableBytes { o -> Int32 in
                    stream.next_in = i.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_in = uInt(i.count)
                    stream.next_out = o.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(o.count)
                    return inflate(&stream, Z_FINISH)
                }
            }
            guard status == Z_STREAM_END, stream.avail_out == 0 else { throw PageError(message: "gzip data is corrupt") }
            return out
        default:
            throw PageError(message: "compression codec \(codec) is not supported (supported: none, snappy, gzip, zstd)", unsupported: true)
        }
    }
}

/// A cursor over page bytes.
struct PageCursor {
    let bytes: [UInt8]
    var position: Int
    let end: Int

    init(_ bytes: [UInt8], from: Int = 0, to: Int? = nil) {
        self.bytes = bytes
        position = from
        end = to ?? bytes.count
    }

    var remaining: Int { end - position }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw PageError(message: "page data ends early (wanted \(n) bytes, \(remaining) left)") }
        defer { position += n }
        return bytes[position..<(position + n)]
    }

    mutating func uint32() throws -> UInt32 {
        let b = try take(4)
        return b.enumerated().reduce(0) { $0 | UInt32($1.element) << UInt32(8 * $1.offset) }
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            let b = try take(1).first!
            result |= UInt64(b & 0x7F) << UInt64(shift)
            if b & 0x80 == 0 { return result }
        }
        throw PageError(message: "varint too long")
    }

    /// `count` values of the RLE / bit-packing hybrid with `bitWidth` bits each.
    mutating func hybrid(count: Int, bitWidth: Int) throws -> [UInt32] {
        guard (0...32).contains(bitWidth) else { throw PageError(message: "bit width \(bitWidth) is out of range") }
        var out: [UInt32] = []
        out.reserveCapacity(count)
        let byteWidth = (bitWidth + 7) / 8
        while out.count < count {
            let header = try varint()
            if header & 1 == 0 {
                let run = Int(min(header >> 1, UInt64(count - out.count)))
                guard header >> 1 > 0 else { throw PageError(message: "empty RLE run") }
                var value: UInt32 = 0
                for (k, b) in try take(byteWidth).enumerated() { value |= UInt32(b) << UInt32(8 * k) }
                out.append(contentsOf: repeatElement(value, count: run))
            } else {
                let groups = Int(header >> 1)
                guard groups > 0, groups <= (remaining / max(bitWidth, 1)) + 1 else { throw PageError(message: "bit-packed run is longer than the page") }
                let packed = try take(groups * bitWidth)
                var buffer: UInt64 = 0, bits = 0
                var iterator = packed.makeIterator()
                let mask: UInt64 = bitWidth == 32 ? 0xFFFF_FFFF : (1 << UInt64(bitWidth)) - 1
                for _ in 0..<(groups * 8) {
                    while bits < bitWidth { buffer |= UInt64(iterator.next() ?? 0) << UInt64(bits); bits += 8 }
                    if out.count < count { out.append(UInt32(buffer & mask)) }
                    buffer >>= UInt64(bitWidth)
                    bits -= bitWidth
                }
            }
        }
        return out
    }
}
