/// Decoders for the encodings that writers choose for data page v2 (DuckDB's `PARQUET_VERSION V2`,
/// Spark, parquet-mr): DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and
/// BYTE_STREAM_SPLIT. Each turns a page's values back into the PLAIN layout, so that one PLAIN
/// decoder does the type conversion for every encoding; these pages are rare enough that the
/// extra copy does not matter. Every count is checked against the bytes left in the page.
enum ParquetTranscoding {
    /// DELTA_BINARY_PACKED: a header (block size, miniblocks per block, value count, first value),
    /// then blocks of (min delta, one bit width per miniblock, bit-packed deltas).
    static func deltaBinaryPacked(_ cursor: inout PageCursor, count: Int) throws -> [Int64] {
        let blockSize = Int(clamping: try cursor.varint())
        let miniblocks = Int(clamping: try cursor.varint())
        let total = Int(clamping: try cursor.varint())
        var value = zigzag(try cursor.varint())
        guard blockSize > 0, blockSize <= 1 << 20, blockSize % 128 == 0, miniblocks > 0, blockSize % miniblocks == 0,
              (blockSize / miniblocks) % 32 == 0 else {
            throw PageError(message: "DELTA_BINARY_PACKED header is invalid (block \(blockSize), miniblocks \(miniblocks))")
        }
        guard total >= count, total <= count + blockSize else {
            throw PageError(message: "DELTA_BINARY_PACKED holds \(total) values where the page has \(count)")
        }
        var out: [Int64] = []
        out.reserveCapacity(count)
        if total > 0 { out.append(value) }
        let perMiniblock = blockSize / miniblocks
        while out.count < total {
            let minDelta = zigzag(try cursor.varint())
            let widths = Array(try cursor.take(miniblocks))
            for width in widths where out.count < total {
                guard width <= 64 else { throw PageError(message: "DELTA_BINARY_PACKED bit width \(width) is out of range") }
                let packed = try cursor.take(perMiniblock * Int(width) / 8)
                var bits = BitUnpacker(packed, width: Int(width))
                for _ in 0..<perMiniblock where out.count < total {
                    value = value &+ minDelta &+ Int64(bitPattern: bits.next())
                    out.append(value)
                }
            }
        }
        return Array(out.prefix(count))
    }

    /// DELTA_BINARY_PACKED integers in PLAIN layout: 4 or 8 little-endian bytes each.
    static func plainIntegers(_ values: [Int64], byteWidth: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(values.count * byteWidth)
        for v in values {
            for k in 0..<byteWidth { out.append(UInt8(truncatingIfNeeded: v >> Int64(8 * k))) }
        }
        return out
    }

    /// DELTA_LENGTH_BYTE_ARRAY: all lengths (DELTA_BINARY_PACKED), then all bytes back to back.
    static func deltaLengthByteArray(_ cursor: inout PageCursor, count: Int) throws -> [UInt8] {
        let lengths = try deltaBinaryPacked(&cursor, count: count)
        var out: [UInt8] = []
        for length in lengths {
            guard length >= 0 else { throw PageError(message: "negative byte array length \(length)") }
            appendLengthPrefixed(try cursor.take(Int(length)), to: &out)
        }
        return out
    }

    /// DELTA_BYTE_ARRAY (incremental encoding): prefix lengths shared with the previous value,
    /// suffix lengths, then the suffixes.
    /// Fixed-length values come out without length prefixes, as PLAIN lays them out.
    static func deltaByteArray(_ cursor: inout PageCursor, count: Int, fixedLength: Bool) throws -> [UInt8] {
        let prefixes = try deltaBinaryPacked(&cursor, count: count)
        let suffixes = try deltaBinaryPacked(&cursor, count: count)
        guard prefixes.count == suffixes.count else { throw PageError(message: "DELTA_BYTE_ARRAY prefix and suffix counts differ") }
        var out: [UInt8] = []
        var previous: [UInt8] = []
        for (prefix, suffix) in zip(prefixes, suffixes) {
            guard prefix >= 0, prefix <= previous.count, suffix >= 0 else {
                throw PageError(message: "DELTA_BYTE_ARRAY prefix \(prefix) / suffix \(suffix) do not fit the previous value")
            }
            var value = Array(previous.prefix(Int(prefix)))
            value += try cursor.take(Int(suffix))
            if fixedLength { out += value } else { appendLengthPrefixed(value[...], to: &out) }
            previous = value
        }
        return out
    }

    /// BYTE_STREAM_SPLIT: byte k of every value is stored in stream k; interleave them back.
    static func byteStreamSplit(_ cursor: inout PageCursor, count: Int, width: Int) throws -> [UInt8] {
        guard width > 0 else { throw PageError(message: "BYTE_STREAM_SPLIT needs a fixed value width") }
        let streams = Array(try cursor.take(count * width))
        var out = [UInt8](repeating: 0, count: streams.count)
        for k in 0..<width {
            for i in 0..<count { out[i * width + k] = streams[k * count + i] }
        }
        return out
    }

    private static func appendLengthPrefixed(_ bytes: ArraySlice<UInt8>, to out: inout [UInt8]) {
        let n = UInt32(bytes.count)
        for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: n >> UInt32(8 * k))) }
        out += bytes
    }

    private static func zigzag(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }
}

/// Little-endian bit unpacking (least significant bit first), widths up to 64.
private struct BitUnpacker {
    let bytes: ArraySlice<UInt8>
    let width: Int
    var bitPosition = 0

    init(_ bytes: ArraySlice<UInt8>, width: Int) {
        self.bytes = bytes
        self.width = width
    }

    mutating func next() -> UInt64 {
        guard width > 0 else { return 0 }
        var result: UInt64 = 0
        var produced = 0
        while produced < width {
            let byteIndex = bytes.startIndex + bitPosition / 8
            let offset = bitPosition % 8
            let byte = byteIndex < bytes.endIndex ? UInt64(bytes[byteIndex]) : 0
            let take = min(8 - offset, width - produced)
            result |= ((byte >> UInt64(offset)) & ((1 << UInt64(take)) - 1)) << UInt64(produced)
            produced += take
            bitPosition += take
        }
        return result
    }
}
