import CSnappy
import CZlib
import CZstd
import SluiceCore

/// One column of the row group being written: values PLAIN-encoded into pages of about
/// `pageBytes`, definition levels RLE-encoded, pages compressed as they fill, statistics kept.
struct ParquetColumnChunk {
    let field: Field
    let options: ParquetWriterOptions
    private(set) var metadata: ColumnChunkMetadata
    /// The chunk's pages so far, compressed, each with its header: kept apart (not appended to
    /// one buffer) so a row group's pages are held once, without a growing buffer's spare room.
    private var pages: [[UInt8]] = []
    private var values: [UInt8] = []
    private var levelRuns: [(present: Bool, count: Int)] = []
    private var pageValues = 0
    private var boolBits = 0
    private var stats = Statistics()
    private(set) var uncompressedBytes = 0
    /// Columns start dictionary-encoded (byte arrays in `byteDictionary`, numbers in
    /// `valueDictionary`) and fall back to PLAIN for the rest of the chunk once the dictionary is no
    /// longer worth it (`keepsDictionary`): unique values such as ids cost little, while repeated
    /// values shrink to a few bits each.
    private var byteDictionary: ByteDictionary?
    private var valueDictionary: ValueDictionary?
    private var dictionary: PageDictionary? { byteDictionary ?? valueDictionary }
    private var dictionaryFull = false
    private var indices: [UInt32] = []
    private var pageRawBytes = 0
    /// PLAIN bytes of the values encoded through the dictionary in this chunk.
    private var dictionaryEncodedBytes = 0

    init(field: Field, options: ParquetWriterOptions) {
        self.field = field
        self.options = options
        metadata = ColumnChunkMetadata(physicalType: ParquetSchemaElement.physicalType(field.type), name: field.name,
                                       codec: options.compression.codec)
        if options.dictionaryBytes > 0 {
            switch field.type {
            case .string, .bytes, .json: byteDictionary = ByteDictionary()
            case .int64, .timestamp, .double, .date: valueDictionary = ValueDictionary(width: Self.plainWidth(field.type)!)
            case .decimal(let p, _) where p <= 18: valueDictionary = ValueDictionary(width: Self.plainWidth(field.type)!)
            case .decimal, .bool: break   // 16-byte decimals stay PLAIN; booleans are bits already
            }
        }
    }

    mutating func append(_ column: Column) throws {
        // A REQUIRED column has no definition levels, so a null cannot even be written down.
        guard field.nullable || column.nullCount == 0 else {
            throw SluiceError(.sink, "column \(field.name) is declared not nullable but has \(column.nullCount) null value(s)")
        }
        // Rows go in by ranges, each with the column's buffers taken once (per value, the
        // accessors' checks cost more than the encoding): a fixed-width range fills the page
        // exactly; byte arrays, of unknown lengths, go 1,024 at a time, so a page or the
        // dictionary overshoots its size by at most that many values.
        let width = ParquetColumnChunk.plainWidth(field.type)
        var row = 0
        while row < column.count {
            let room = width.map { max(1, (options.pageBytes - values.count - pageRawBytes + $0 - 1) / $0) } ?? 1024
            let rows = row..<min(column.count, row + room)
            appendLevels(column, rows)
            appendValues(column, rows)
            row = rows.upperBound
            if values.count + pageRawBytes >= options.pageBytes { try flushPage() }
            if let dictionary, !dictionaryFull, !keepsDictionary(dictionary) {
                try flushPage()
                dictionaryFull = true
            }
        }
    }

    /// Up to `dictionaryBytes` a dictionary is always kept; past it, only while the values repeat
    /// (the dictionary holds at most half the bytes of the values it stands for) and it stays
    /// within `maxDictionaryBytes`, so a column of a few thousand distinct texts is not written
    /// out in full because its dictionary passed a fixed size.
    private func keepsDictionary(_ dictionary: PageDictionary) -> Bool {
        let size = dictionary.pageBytes
        return size <= options.dictionaryBytes || (size <= options.maxDictionaryBytes && size * 2 <= dictionaryEncodedBytes)
    }

    /// Bytes held for this chunk before compression: its pages and its dictionary.
    var bufferedBytes: Int { uncompressedBytes + (dictionary?.pageBytes ?? 0) }

    /// Bytes a value takes PLAIN-encoded, for fixed-width types.
    static func plainWidth(_ type: DataType) -> Int? {
        switch type {
        case .int64, .timestamp, .double: 8
        case .date: 4
        case .decimal(let p, _): p <= 9 ? 4 : p <= 18 ? 8 : 16
        case .bool: nil   // bits; rare enough to go by the 1,024
        case .string, .bytes, .json: nil
        }
    }

    private mutating func appendLevels(_ column: Column, _ rows: Range<Int>) {
        pageValues += rows.count
        if column.nullCount == 0 {
            addLevelRun(present: true, rows.count)
            return
        }
        for row in rows {
            let present = !column.isNull(row)
            addLevelRun(present: present, 1)
            if !present { metadata.nullCount += 1 }
        }
    }

    @inline(__always) private mutating func addLevelRun(present: Bool, _ count: Int) {
        if let last = levelRuns.last, last.present == present {
            levelRuns[levelRuns.count - 1].count += count
        } else {
            levelRuns.append((present, count))
        }
    }

    /// PLAIN values (or dictionary indices) and statistics of the present rows in `rows`.
    private mutating func appendValues(_ column: Column, _ rows: Range<Int>) {
        let noNulls = column.nullCount == 0
        switch field.type {
        case .bool:
            for row in rows where noNulls || !column.isNull(row) {
                let v = column.bools[row]
                if boolBits % 8 == 0 { values.append(0) }
                if v { values[values.count - 1] |= 1 << UInt8(boolBits % 8) }
                boolBits += 1
                stats.add(int: v ? 1 : 0)
            }
        case .int64, .timestamp:
            column.int64s.withUnsafeBufferPointer { p in
                appendIntegers(p, rows, column, noNulls)
                if encodesWithDictionary { appendIndices(p, rows, column, noNulls) { UInt64(bitPattern: $0) } }
            }
        case .date:
            column.int32s.withUnsafeBufferPointer { p in
                appendIntegers(p, rows, column, noNulls)
                if encodesWithDictionary { appendIndices(p, rows, column, noNulls) { UInt64(UInt32(bitPattern: $0)) } }
            }
        case .double:
            column.doubles.withUnsafeBufferPointer { p in
                var low = Double.infinity, high = -Double.infinity
                if encodesWithDictionary {
                    appendIndices(p, rows, column, noNulls) { $0.bitPattern }
                    for row in rows where (noNulls || !column.isNull(row)) && !p[row].isNaN { low = min(low, p[row]); high = max(high, p[row]) }
                } else if noNulls {
                    values.append(contentsOf: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: p[rows])))
                    for v in p[rows] where !v.isNaN { low = min(low, v); high = max(high, v) }
                } else {
                    for row in rows where !column.isNull(row) {
                        let v = p[row]
                        appendLittleEndian(v.bitPattern)
                        if !v.isNaN { low = min(low, v); high = max(high, v) }
                    }
                }
                // NaN has no order; readers skip on min/max only.
                if low <= high { stats.add(double: low); stats.add(double: high) }
            }
        case .decimal(let p, _):
            column.decimals.withUnsafeBufferPointer { d in
                let viaDictionary = encodesWithDictionary
                if viaDictionary {
                    appendIndices(d, rows, column, noNulls) { p <= 9 ? UInt64(UInt32(truncatingIfNeeded: $0)) : UInt64(truncatingIfNeeded: $0) }
                }
                var low = Int128.max, high = Int128.min
                for row in rows where noNulls || !column.isNull(row) {
                    let v = d[row]
                    low = min(low, v)
                    high = max(high, v)
                    if viaDictionary { continue }
                    if p <= 9 { appendLittleEndian(Int32(truncatingIfNeeded: v)) } else if p <= 18 { appendLittleEndian(Int64(truncatingIfNeeded: v)) } else {
                        // FIXED_LEN_BYTE_ARRAY(16): big-endian two's complement.
                        withUnsafeBytes(of: v.bigEndian) { values.append(contentsOf: $0) }
                    }
                }
                if low <= high { stats.add(decimal: low); stats.add(decimal: high) }
            }
        case .string, .bytes, .json:
            column.bytes.withUnsafeBytes { all in column.offsets.withUnsafeBufferPointer { offsets in
                if encodesWithDictionary {
                    var dictionary = byteDictionary.take()!
                    defer { byteDictionary = dictionary }
                    var encoded = 0
                    for row in rows where noNulls || !column.isNull(row) {
                        let b = UnsafeRawBufferPointer(rebasing: all[offsets[row]..<offsets[row + 1]])
                        let (index, inserted) = dictionary.index(of: b)
                        indices.append(UInt32(index))
                        encoded += b.count + 4
                        // Every value is one of the dictionary's, so its entries bound the chunk.
                        if inserted { stats.add(bytes: b) }
                    }
                    pageRawBytes += encoded
                    dictionaryEncodedBytes += encoded
                } else {
                    for row in rows where noNulls || !column.isNull(row) {
                        let b = UnsafeRawBufferPointer(rebasing: all[offsets[row]..<offsets[row + 1]])
                        appendLittleEndian(UInt32(b.count))
                        values.append(contentsOf: b)
                        stats.add(bytes: b)
                    }
                }
            } }
        }
    }

    /// Whether the values go in as dictionary indices rather than PLAIN.
    private var encodesWithDictionary: Bool { !dictionaryFull && (byteDictionary != nil || valueDictionary != nil) }

    /// Dictionary indices of the present fixed-width values in `rows`, looked up by `key`, their
    /// 64-bit pattern.
    private mutating func appendIndices<T>(_ p: UnsafeBufferPointer<T>, _ rows: Range<Int>, _ column: Column, _ noNulls: Bool,
                                           key: (T) -> UInt64) {
        // Moved out for the loop, so it is surely not shared (no copy-on-write checks per value).
        var dictionary = valueDictionary.take()!
        defer { valueDictionary = dictionary }
        var n = 0
        for row in rows where noNulls || !column.isNull(row) {
            indices.append(UInt32(dictionary.index(of: key(p[row]))))
            n += 1
        }
        pageRawBytes += n * dictionary.width
        dictionaryEncodedBytes += n * dictionary.width
    }

    /// int64 / timestamp / date values: copied as they are when there are no nulls (the host is
    /// little-endian, as PLAIN is), unless they go through the dictionary; min and max over the range.
    private mutating func appendIntegers<T: FixedWidthInteger>(_ p: UnsafeBufferPointer<T>, _ rows: Range<Int>, _ column: Column, _ noNulls: Bool) {
        var low = T.max, high = T.min
        if encodesWithDictionary {
            for row in rows where noNulls || !column.isNull(row) { low = min(low, p[row]); high = max(high, p[row]) }
        } else if noNulls {
            values.append(contentsOf: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: p[rows])))
            for v in p[rows] { low = min(low, v); high = max(high, v) }
        } else {
            for row in rows where !column.isNull(row) {
                let v = p[row]
                appendLittleEndian(v)
                low = min(low, v)
                high = max(high, v)
            }
        }
        if low <= high { stats.add(int: Int64(low)); stats.add(int: Int64(high)) }
    }

    private mutating func appendLittleEndian<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { values.append(contentsOf: $0) }
    }

    /// RLE runs of definition levels (bit width 1), with the 4-byte length prefix of data page v1.
    private func encodedLevels() -> [UInt8] {
        var w = ThriftCompactWriter()   // reused for its varint encoder only
        for run in levelRuns {
            w.varint(UInt64(run.count) << 1)
            w.bytes.append(run.present ? 1 : 0)
        }
        var length = UInt32(w.bytes.count).littleEndian
        return withUnsafeBytes(of: &length) { Array($0) } + w.bytes
    }

    private mutating func flushPage() throws {
        guard pageValues > 0 else { return }
        var body = field.nullable ? encodedLevels() : []
        let dictionaryEncoded = !indices.isEmpty || encodesWithDictionary
        if dictionaryEncoded {
            body += HybridEncoder.encodeIndices(indices, bitWidth: HybridEncoder.bitWidth(forDictionaryOf: dictionary!.count))
            metadata.usesDictionary = true
        } else {
            body += values
        }
        let count = pageValues
        pages.append(try page(type: 0, body: body) { h in
            h.field(5, struct: { d in
                d.field(1, i32: Int32(count))
                d.field(2, i32: dictionaryEncoded ? 8 : 0)   // RLE_DICTIONARY or PLAIN
                d.field(3, i32: 3)   // RLE
                d.field(4, i32: 3)
            })
        })
        metadata.numValues += Int64(pageValues)
        uncompressedBytes += body.count
        values.removeAll(keepingCapacity: true)
        indices.removeAll(keepingCapacity: true)
        pageRawBytes = 0
        levelRuns.removeAll(keepingCapacity: true)
        pageValues = 0
        boolBits = 0
    }

    /// One page: its header (type, sizes, plus what `details` writes) and its compressed body.
    /// The chunk's size totals count it.
    private mutating func page(type: Int32, body: [UInt8], details: (inout ThriftCompactWriter) -> Void) throws -> [UInt8] {
        let compressed = try ParquetCodec.compress(body, options.compression)
        var header = ThriftCompactWriter()
        header.writeStruct { h in
            h.field(1, i32: type)
            h.field(2, i32: Int32(body.count))
            h.field(3, i32: Int32(compressed.count))
            details(&h)
        }
        metadata.uncompressedSize += Int64(header.bytes.count + body.count)
        metadata.compressedSize += Int64(header.bytes.count + compressed.count)
        return header.bytes + compressed
    }

    /// The chunk's pages, ready to write (a dictionary page first when one is used); statistics are
    /// moved into `metadata`, and `dictionaryPageLength` says where the data pages start.
    mutating func finishChunk() throws -> (pages: [[UInt8]], dictionaryPageLength: Int) {
        try flushPage()
        (metadata.min, metadata.max) = stats.encoded(field.type)
        guard metadata.usesDictionary, let dictionary else { return (pages, 0) }
        let dictionaryPage = try page(type: 2, body: dictionary.plainEncoded()) { h in
            h.field(7, struct: { d in
                d.field(1, i32: Int32(dictionary.count))
                d.field(2, i32: 0)   // PLAIN
            })
        }
        return ([dictionaryPage] + pages, dictionaryPage.count)
    }
}

/// Min/max of a column chunk, kept typed and encoded as Parquet wants them at the end.
struct Statistics {
    var minInt: Int64?, maxInt: Int64?
    var minDouble: Double?, maxDouble: Double?
    var minDecimal: Int128?, maxDecimal: Int128?
    var minBytes: [UInt8]?, maxBytes: [UInt8]?

    mutating func add(int v: Int64) {
        if minInt.map({ v < $0 }) ?? true { minInt = v }
        if maxInt.map({ v > $0 }) ?? true { maxInt = v }
    }

    mutating func add(double v: Double) {
        guard !v.isNaN else { return }   // NaN has no order; readers skip on min/max only
        if minDouble.map({ v < $0 }) ?? true { minDouble = v }
        if maxDouble.map({ v > $0 }) ?? true { maxDouble = v }
    }

    mutating func add(decimal v: Int128) {
        if minDecimal.map({ v < $0 }) ?? true { minDecimal = v }
        if maxDecimal.map({ v > $0 }) ?? true { maxDecimal = v }
    }

    /// The first eight bytes of `minBytes` / `maxBytes` as a big-endian number (zero-padded): a
    /// value whose leading bytes differ is ordered by them, without a comparison call.
    private var minPrefix: UInt64 = 0, maxPrefix: UInt64 = 0

    mutating func add(bytes v: UnsafeRawBufferPointer) {
        let prefix = Self.prefix(v)
        if minBytes == nil || (prefix <= minPrefix && (prefix < minPrefix || minBytes!.withUnsafeBytes({ ByteOrder.compare(v, $0) < 0 }))) {
            minBytes = Array(v)
            minPrefix = prefix
        }
        if maxBytes == nil || (prefix >= maxPrefix && (prefix > maxPrefix || maxBytes!.withUnsafeBytes({ ByteOrder.compare($0, v) < 0 }))) {
            maxBytes = Array(v)
            maxPrefix = prefix
        }
    }

    /// Zero padding keeps the order: a shorter value whose bytes begin the longer one is smaller.
    @inline(__always) private static func prefix(_ v: UnsafeRawBufferPointer) -> UInt64 {
        if v.count >= 8 { return UInt64(bigEndian: v.loadUnaligned(as: UInt64.self)) }
        var p: UInt64 = 0
        for k in 0..<v.count { p |= UInt64(v[k]) << UInt64(56 - 8 * k) }
        return p
    }

    func encoded(_ type: DataType) -> ([UInt8]?, [UInt8]?) {
        func le<T: FixedWidthInteger>(_ v: T?) -> [UInt8]? { v.map { withUnsafeBytes(of: $0.littleEndian) { Array($0) } } }
        switch type {
        case .bool: return (minInt.map { [UInt8($0)] }, maxInt.map { [UInt8($0)] })
        case .int64, .timestamp: return (le(minInt), le(maxInt))
        case .date: return (le(minInt.map { Int32($0) }), le(maxInt.map { Int32($0) }))
        case .double: return (le(minDouble?.bitPattern), le(maxDouble?.bitPattern))
        case .decimal(let p, _):
            if p <= 9 { return (le(minDecimal.map { Int32(truncatingIfNeeded: $0) }), le(maxDecimal.map { Int32(truncatingIfNeeded: $0) })) }
            if p <= 18 { return (le(minDecimal.map { Int64(truncatingIfNeeded: $0) }), le(maxDecimal.map { Int64(truncatingIfNeeded: $0) })) }
            func be(_ v: Int128?) -> [UInt8]? { v.map { withUnsafeBytes(of: $0.bigEndian) { Array($0) } } }
            return (be(minDecimal), be(maxDecimal))
        case .string, .bytes, .json: return (minBytes, maxBytes)
        }
    }
}

/// Page compression.
enum ParquetCodec {
    static func compress(_ input: [UInt8], _ codec: ParquetCompression) throws -> [UInt8] {
        switch codec {
        case .none:
            return input
        case .snappy:
            var length = snappy_max_compressed_length(input.count)
            var out = [UInt8](repeating: 0, count: length)
            let status = out.withUnsafeMutableBytes { o in
                input.withUnsafeBytes { i in
                    snappy_compress(i.baseAddress?.assumingMemoryBound(to: CChar.self), i.count,
                                    o.baseAddress!.assumingMemoryBound(to: CChar.self), &length)
                }
            }
            guard status == SNAPPY_OK else { throw SluiceError(.sink, "snappy compression failed") }
            out.removeLast(out.count - length)
            return out
        case .zstd:
            var out = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
            let n = out.withUnsafeMutableBytes { o in input.withUnsafeBytes { i in ZSTD_compress(o.baseAddress, o.count, i.baseAddress, i.count, 3) } }
            guard ZSTD_isError(n) == 0 else { throw SluiceError(.sink, "zstd compression failed") }
            out.removeLast(out.count - n)
            return out
        case .gzip:
            var stream = z_stream()
            guard deflateInit2_(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw SluiceError(.sink, "cannot start gzip compression")
            }
            defer { deflateEnd(&stream) }
            var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 32)
            var input = input
            let status = input.withUnsafeMutableBytes { i in
                out.withUnsafeMutableBytes { o -> Int32 in
                    stream.next_in = i.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_in = uInt(i.count)
                    stream.next_out = o.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(o.count)
                    return deflate(&stream, Z_FINISH)
                }
            }
            guard status == Z_STREAM_END else { throw SluiceError(.sink, "gzip compression failed") }
            out.removeLast(Int(stream.avail_out))
            return out
        }
    }
}
