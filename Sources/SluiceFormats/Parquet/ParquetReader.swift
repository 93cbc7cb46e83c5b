import SluiceCore

/// Reads flat Parquet files row group by row group into record batches, only the columns asked for.
/// Understands data pages v1 and v2; PLAIN, dictionary, RLE booleans, DELTA_BINARY_PACKED,
/// DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and BYTE_STREAM_SPLIT (everything pyarrow, DuckDB,
/// polars and Spark write for flat columns); none/snappy/gzip/zstd compression. Memory is one row group of
/// the projected columns.
public final class ParquetReader {
    public let schema: Schema
    /// Rows in the file, from the footer.
    public let rowCount: Int
    /// Size of the file in bytes.
    public var fileBytes: Int { file.size }
    private let file: ParquetFile
    private let leaves: [Leaf]
    private let rowGroups: [ThriftValue]
    private var nextGroup = 0

    struct Leaf {
        var index: Int          // column position in the file
        var name: String
        var physical: Int64
        var typeLength: Int
        var optional: Bool
        var type: DataType
        /// Timestamps: multiply (millis) or divide (nanos) to get µs.
        var microsFactor: Int64 = 1
        var nanos = false
        /// UINT_32 / UINT_64: read the bits as unsigned (UINT_64 lands in decimal(20,0)).
        var unsigned = false
        /// UUID: 16 bytes shown as the canonical 8-4-4-4-12 string.
        var uuid = false
    }

    public init(path: String, columns wanted: [String]? = nil) throws {
        file = try ParquetFile(path: path)
        let meta = file.metadata
        guard let elements = meta[2]?.list, elements.count >= 1 else { throw file.corrupt("the footer has no schema") }
        var leaves: [Leaf] = []
        for (i, e) in elements.dropFirst().enumerated() {
            let name = e[4]?.string ?? "column_\(i + 1)"
            guard let physical = e[1]?.int else {
                throw SluiceError(.source, "column \(name) is nested (a group); nested Parquet columns are not supported yet",
                                  location: path, fix: "select flat columns, or flatten the data before export")
            }
            if e[3]?.int == 2 { throw SluiceError(.source, "column \(name) is repeated (a list); not supported yet", location: path) }
            let leaf = try Self.leaf(e, index: i, name: name, physical: physical, path: path)
            if wanted.map({ $0.contains(name) }) ?? true { leaves.append(leaf) }
        }
        self.leaves = leaves
        rowGroups = meta[4]?.list ?? []
        rowCount = Int(max(0, meta[3]?.int ?? 0))
        schema = Schema(leaves.map { Field($0.name, $0.type, nullable: $0.optional) })
    }

    static func leaf(_ e: ThriftValue, index: Int, name: String, physical: Int64, path: String) throws -> Leaf {
        let logical = e[10]
        let converted = e[6]?.int
        var leaf = Leaf(index: index, name: name, physical: physical, typeLength: Int(e[2]?.int ?? 0), optional: e[3]?.int != 0, type: .string)
        leaf.unsigned = (11...14).contains(converted ?? 0) || logical?[10]?[2]?.bool == false
        let decimal: DataType? = {
            if let d = logical?[5] { return .decimal(precision: Int(min(38, d[2]?.int ?? 38)), scale: Int(max(0, d[1]?.int ?? 0))) }
            if converted == 5 { return .decimal(precision: Int(min(38, e[8]?.int ?? 38)), scale: Int(max(0, e[7]?.int ?? 0))) }
            return nil
        }()
        switch physical {
        case 0: leaf.type = .bool
        case 1: leaf.type = decimal ?? (logical?[6] != nil || converted == 6 ? .date : .int64)
        case 2 where leaf.unsigned && decimal == nil:
            leaf.type = .decimal(precision: 20, scale: 0)
        case 2:
            if let d = decimal {
                leaf.type = d
            } else if let t = logical?[8] {
                leaf.type = .timestamp
                let unit = t[2]?.fields?.keys.first ?? 2
                if unit == 1 { leaf.microsFactor = 1000 } else if unit == 3 { leaf.nanos = true }
            } else if converted == 9 || converted == 10 {
                leaf.type = .timestamp
                if converted == 9 { leaf.microsFactor = 1000 }
            } else {
                leaf.type = .int64
            }
        case 3: leaf.type = .timestamp   // INT96, as Spark and Impala wrote timestamps
        case 4, 5: leaf.type = .double
        case 6: leaf.type = logical?[12] != nil || converted == 19 ? .json : (logical?[1] != nil || logical?[4] != nil || converted == 0 || converted == 4 ? .string : .bytes)
        case 7:
            guard leaf.typeLength > 0 else { throw SluiceError(.parse, "column \(name): FIXED_LEN_BYTE_ARRAY without a length", location: path) }
            leaf.uuid = logical?[14] != nil && leaf.typeLength == 16
            leaf.type = leaf.uuid ? .string : decimal.flatMap { leaf.typeLength <= 16 ? $0 : nil } ?? .bytes
        default:
            throw SluiceError(.source, "column \(name) has physical type \(physical), which is not supported", location: path)
        }
        return leaf
    }

    /// The next row group as a batch; nil after the last.
    public func next() throws -> RecordBatch? {
        guard nextGroup < rowGroups.count else { return nil }
        let group = rowGroups[nextGroup]
        nextGroup += 1
        let rows = Int(group[3]?.int ?? 0)
        let chunks = group[1]?.list ?? []
        var columns: [Column] = []
        for leaf in leaves {
            guard leaf.index < chunks.count, let m = chunks[leaf.index][3] else {
                throw file.corrupt("row group \(nextGroup - 1) has no metadata for column \(leaf.name)")
            }
            do {
                let column = try readChunk(m, leaf: leaf, rows: rows)
                guard column.count == rows else {
                    throw PageError(message: "\(column.count) values where the row group has \(rows) rows")
                }
                columns.append(column)
            } catch let e as PageError where e.unsupported {
                throw SluiceError(.source, "row group \(nextGroup - 1), column \(leaf.name): \(e.message)", location: file.path,
                                  fix: "rewrite the file with a common encoding and codec (PLAIN or dictionary; snappy, gzip or zstd)")
            } catch let e as PageError {
                throw file.corrupt("row group \(nextGroup - 1), column \(leaf.name): \(e.message)")
            } catch let e as ThriftCompactReader.Malformed {
                throw file.corrupt("row group \(nextGroup - 1), column \(leaf.name): page header malformed: \(e.message)")
            }
        }
        return RecordBatch(schema: schema, columns: columns, origins: rows > 0 ? nil : [])
    }

    private func readChunk(_ m: ThriftValue, leaf: Leaf, rows: Int) throws -> Column {
        let codec = m[4]?.int ?? 0
        let start = Int(m[11]?.int ?? m[9]?.int ?? 0)
        let length = Int(m[7]?.int ?? 0)
        let bytes = try file.read(offset: start, count: length)
        var out = Column(type: leaf.type, capacity: rows)
        var dictionary: Column?
        var position = 0
        while out.count < rows {
            guard position < bytes.count else { throw PageError(message: "the column chunk ends after \(out.count) of \(rows) values") }
            var headerReader = ThriftCompactReader(bytes, at: position)
            let header = try headerReader.readStruct()
            position = headerReader.position
            let compressedSize = Int(header[3]?.int ?? -1)
            let uncompressedSize = Int(header[2]?.int ?? -1)
            guard compressedSize >= 0, compressedSize <= bytes.count - position else { throw PageError(message: "a page runs past the column chunk") }
            let body = bytes[position..<(position + compressedSize)]
            position += compressedSize
            switch header[1]?.int {
            case 2:
                let page = try ParquetDecompression.decompress(body, codec: codec, size: uncompressedSize)
                var cursor = PageCursor(page)
                var dict = Column(type: leaf.type)
                try decodePlain(&cursor, count: Int(header[7]?[1]?.int ?? 0), leaf: leaf, into: &dict)
                dictionary = dict
            case 0:
                guard let h = header[5] else { throw PageError(message: "data page without its header") }
                let page = try ParquetDecompression.decompress(body, codec: codec, size: uncompressedSize)
                var cursor = PageCursor(page)
                let count = Int(h[1]?.int ?? 0)
                var levels: [UInt32]?
                if leaf.optional {
                    let n = Int(try cursor.uint32())
                    var levelCursor = PageCursor(page, from: cursor.position, to: cursor.position + min(n, cursor.remaining))
                    levels = try levelCursor.hybrid(count: count, bitWidth: 1)
                    _ = try cursor.take(n)
                }
                try decodeValues(&cursor, count: count, levels: levels, encoding: h[2]?.int ?? 0, leaf: leaf, dictionary: dictionary, into: &out)
            case 3:
                guard let h = header[8] else { throw PageError(message: "data page v2 without its header") }
                let count = Int(h[1]?.int ?? 0)
                let defLength = Int(h[5]?.int ?? 0), repLength = Int(h[6]?.int ?? 0)
                guard defLength >= 0, repLength >= 0, defLength + repLength <= body.count else { throw PageError(message: "level lengths exceed the page") }
                let raw = Array(body)
                var levels: [UInt32]?
                if leaf.optional {
                    var levelCursor = PageCursor(raw, from: repLength, to: repLength + defLength)
                    levels = try levelCursor.hybrid(count: count, bitWidth: 1)
                }
                let valuesPart = raw[(repLength + defLength)...]
                let compressed = h[7]?.bool ?? true
                let values = compressed
                    ? try ParquetDecompression.decompress(valuesPart, codec: codec, size: uncompressedSize - defLength - repLength)
                    : Array(valuesPart)
                var cursor = PageCursor(values)
                try decodeValues(&cursor, count: count, levels: levels, encoding: h[4]?.int ?? 0, leaf: leaf, dictionary: dictionary, into: &out)
            default:
                continue   // index pages and the like carry no values
            }
        }
        return out
    }

    private func decodeValues(_ cursor: inout PageCursor, count: Int, levels: [UInt32]?, encoding: Int64, leaf: Leaf,
                              dictionary: Column?, into out: inout Column) throws {
        let present = levels.map { $0.reduce(0) { $0 + Int($1 & 1) } } ?? count
        var values = Column(type: leaf.type, capacity: present)
        switch encoding {
        case 0:
            try decodePlain(&cursor, count: present, leaf: leaf, into: &values)
        case 3 where leaf.physical == 0:
            // Booleans in RLE (data page v2 writers): a length, then the hybrid at bit width 1.
            let n = Int(try cursor.uint32())
            var bits = PageCursor(cursor.bytes, from: cursor.position, to: cursor.position + min(n, cursor.remaining))
            for v in try bits.hybrid(count: present, bitWidth: 1) { values.append(bool: v == 1) }
            _ = try cursor.take(min(n, cursor.remaining))
        case 2, 8:
            guard let dictionary else { throw PageError(message: "dictionary-encoded page without a dictionary page") }
            let width = Int(try cursor.take(1).first!)
            for index in try cursor.hybrid(count: present, bitWidth: width) {
                guard Int(index) < dictionary.count else { throw PageError(message: "dictionary index \(index) out of range") }
                values.append(from: dictionary, row: Int(index))
            }
        case 5 where leaf.physical == 1 || leaf.physical == 2:
            let integers = try ParquetTranscoding.deltaBinaryPacked(&cursor, count: present)
            var plain = PageCursor(ParquetTranscoding.plainIntegers(integers, byteWidth: leaf.physical == 1 ? 4 : 8))
            try decodePlain(&plain, count: present, leaf: leaf, into: &values)
        case 6 where leaf.physical == 6:
            var plain = PageCursor(try ParquetTranscoding.deltaLengthByteArray(&cursor, count: present))
            try decodePlain(&plain, count: present, leaf: leaf, into: &values)
        case 7 where leaf.physical == 6 || leaf.physical == 7:
            var plain = PageCursor(try ParquetTranscoding.deltaByteArray(&cursor, count: present, fixedLength: leaf.physical == 7))
            try decodePlain(&plain, count: present, leaf: leaf, into: &values)
        case 9 where [1, 2, 4, 5, 7].contains(leaf.physical):
            let width = [1: 4, 2: 8, 4: 4, 5: 8][leaf.physical] ?? leaf.typeLength
            var plain = PageCursor(try ParquetTranscoding.byteStreamSplit(&cursor, count: present, width: width))
            try decodePlain(&plain, count: present, leaf: leaf, into: &values)
        default:
            let name = ParquetFileInfo.encodingNames[Int(encoding)] ?? "\(encoding)"
            throw PageError(message: "encoding \(name) is not supported for physical type \(leaf.physical)", unsupported: true)
        }
        var next = 0
        for i in 0..<count {
            if let levels, levels[i] == 0 { out.appendNull() } else { out.append(from: values, row: next); next += 1 }
        }
    }

    private func decodePlain(_ cursor: inout PageCursor, count: Int, leaf: Leaf, into out: inout Column) throws {
        func le(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        switch leaf.physical {
        case 0:
            let packed = try cursor.take((count + 7) / 8)
            for i in 0..<count { out.append(bool: packed[packed.startIndex + i / 8] >> UInt8(i % 8) & 1 == 1) }
        case 1:
            for _ in 0..<count {
                let bits = UInt32(truncatingIfNeeded: le(try cursor.take(4)))
                let v = Int32(bitPattern: bits)
                switch leaf.type {
                case .date: out.append(int32: v)
                case .decimal: out.append(decimal: Int128(v))
                default: out.append(int64: leaf.unsigned ? Int64(bits) : Int64(v))
                }
            }
        case 2:
            for _ in 0..<count {
                let bits = le(try cursor.take(8))
                let v = Int64(bitPattern: bits)
                switch leaf.type {
                case .decimal: out.append(decimal: leaf.unsigned ? Int128(bits) : Int128(v))
                case .timestamp: out.append(int64: leaf.nanos ? BatchTyper.floorDiv(v, 1000) : v &* leaf.microsFactor)
                default: out.append(int64: v)
                }
            }
        case 3:
            for _ in 0..<count {
                let b = try cursor.take(12)
                let nanos = Int64(bitPattern: le(b.prefix(8)))
                let julian = Int64(le(b.suffix(4)))
                out.append(int64: (julian - 2_440_588) * Temporal.microsPerDay + nanos / 1000)
            }
        case 4:
            for _ in 0..<count { out.append(double: Double(Float(bitPattern: UInt32(le(try cursor.take(4)))))) }
        case 5:
            for _ in 0..<count { out.append(double: Double(bitPattern: le(try cursor.take(8)))) }
        case 6:
            for _ in 0..<count {
                let n = Int(try cursor.uint32())
                try cursor.take(n).withUnsafeBytes { out.append(bytes: $0) }
            }
        default:
            for _ in 0..<count {
                let b = try cursor.take(leaf.typeLength)
                if case .decimal = leaf.type {
                    var v = Int128(Int8(bitPattern: b.first ?? 0))
                    for byte in b.dropFirst() { v = v << 8 | Int128(byte) }
                    out.append(decimal: v)
                } else if leaf.uuid {
                    out.append(string: Self.uuidText(b))
                } else {
                    b.withUnsafeBytes { out.append(bytes: $0) }
                }
            }
        }
    }

    static func uuidText(_ bytes: ArraySlice<UInt8>) -> String {
        let hex = bytes.hexString
        var out = ""
        for (i, c) in hex.enumerated() {
            if [8, 12, 16, 20].contains(i) { out.append("-") }
            out.append(c)
        }
        return out
    }
}
