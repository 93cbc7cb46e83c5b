import SluiceCore

/// What a Parquet file's footer says: schema, row groups, column chunks with encodings,
/// compression, sizes and statistics (`sluice inspect`). Reading it touches only the footer.
public struct ParquetFileInfo: Sendable {
    public struct Column: Sendable {
        public var name: String
        public var physicalType: String
        public var logicalType: String?
        public var repetition: String
    }

    public struct ColumnChunk: Sendable {
        public var column: String
        public var encodings: [String]
        public var codec: String
        public var values: Int64
        public var compressedBytes: Int64
        public var uncompressedBytes: Int64
        public var nullCount: Int64?
        public var min: String?
        public var max: String?
    }

    public struct RowGroup: Sendable {
        public var rows: Int64
        public var bytes: Int64
        public var columns: [ColumnChunk]
    }

    public var path: String
    public var fileBytes: Int64
    public var version: Int64
    public var createdBy: String?
    public var rows: Int64
    public var columns: [Column]
    public var rowGroups: [RowGroup]

    static let physicalNames = ["BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"]
    static let encodingNames = [0: "PLAIN", 2: "PLAIN_DICTIONARY", 3: "RLE", 4: "BIT_PACKED", 5: "DELTA_BINARY_PACKED",
                                6: "DELTA_LENGTH_BYTE_ARRAY", 7: "DELTA_BYTE_ARRAY", 8: "RLE_DICTIONARY", 9: "BYTE_STREAM_SPLIT"]
    static let codecNames = ["UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"]

    /// Reads and checks the footer: magic bytes at both ends, a footer length that fits the file,
    /// well-formed metadata. Every problem names the file and the part that is wrong.
    public static func read(path: String) throws -> ParquetFileInfo {
        let file = try ParquetFile(path: path)
        do {
            return try ParquetFileInfo(file.metadata, path: path, fileBytes: Int64(file.size))
        } catch let e as ThriftCompactReader.Malformed {
            throw file.corrupt("the footer metadata is incomplete: \(e.message)")
        }
    }

    init(_ meta: ThriftValue, path: String, fileBytes: Int64) throws {
        func need<T>(_ v: T?, _ what: String) throws -> T {
            guard let v else { throw ThriftCompactReader.Malformed(message: "missing \(what)", offset: 0) }
            return v
        }
        self.path = path
        self.fileBytes = fileBytes
        version = meta[1]?.int ?? 0
        createdBy = meta[6]?.string
        rows = try need(meta[3]?.int, "num_rows")
        let elements = try need(meta[2]?.list, "schema")
        columns = elements.dropFirst().map { e in
            let physical = e[1] == nil ? "GROUP" : Self.name(in: Self.physicalNames, e[1]?.int)
            let repetition = Self.name(in: ["REQUIRED", "OPTIONAL", "REPEATED"], e[3]?.int ?? 0)
            return Column(name: e[4]?.string ?? "?", physicalType: physical, logicalType: Self.logicalType(e), repetition: repetition)
        }
        var groups: [RowGroup] = []
        for group in try need(meta[4]?.list, "row_groups") {
            var chunks: [ColumnChunk] = []
            for (i, chunk) in (group[1]?.list ?? []).enumerated() {
                let m = try need(chunk[3], "column metadata")
                let column = i < columns.count ? columns[i] : Column(name: "?", physicalType: "?", repetition: "?")
                let stats = m[12]
                let decode = { (bytes: [UInt8]?) in bytes.map { Self.statistic($0, column, element: i + 1 < elements.count ? elements[i + 1] : nil) } }
                chunks.append(ColumnChunk(
                    column: (m[3]?.list ?? []).compactMap(\.string).joined(separator: "."),
                    encodings: (m[2]?.list ?? []).compactMap { $0.int.map { Self.encodingNames[Int($0)] ?? "\($0)" } },
                    codec: Self.name(in: Self.codecNames, m[4]?.int),
                    values: m[5]?.int ?? 0, compressedBytes: m[7]?.int ?? 0, uncompressedBytes: m[6]?.int ?? 0,
                    nullCount: stats?[3]?.int, min: decode(stats?[6]?.binary ?? stats?[2]?.binary),
                    max: decode(stats?[5]?.binary ?? stats?[1]?.binary)))
            }
            groups.append(RowGroup(rows: group[3]?.int ?? 0, bytes: group[2]?.int ?? 0, columns: chunks))
        }
        rowGroups = groups
    }

    /// An enum value's name; whatever a damaged file holds, never out of range.
    static func name(in names: [String], _ value: Int64?) -> String {
        guard let value, value >= 0, value < names.count else { return value.map { "unknown (\($0))" } ?? "?" }
        return names[Int(value)]
    }

    static func logicalType(_ e: ThriftValue) -> String? {
        if let l = e[10]?.fields, let (id, v) = l.first {
            switch id {
            case 1: return "STRING"
            case 5: return "DECIMAL(\(v[2]?.int ?? 0),\(v[1]?.int ?? 0))"
            case 6: return "DATE"
            case 8:
                let unit = v[2]?.fields?.keys.first.map { [1: "MILLIS", 2: "MICROS", 3: "NANOS"][$0] ?? "?" } ?? "?"
                return "TIMESTAMP(\(unit), \(v[1]?.bool == true ? "UTC" : "local"))"
            case 10: return "INTEGER"
            case 12: return "JSON"
            case 13: return "BSON"
            case 14: return "UUID"
            default: return "logical type \(id)"
            }
        }
        switch e[6]?.int {
        case 0: return "UTF8"
        case 5: return "DECIMAL(\(e[8]?.int ?? 0),\(e[7]?.int ?? 0))"
        case 6: return "DATE"
        case 9: return "TIMESTAMP_MILLIS"
        case 10: return "TIMESTAMP_MICROS"
        case 19: return "JSON"
        default: return nil
        }
    }

    /// A statistics value as text, decoded by the column's types.
    static func statistic(_ b: [UInt8], _ column: Column, element: ThriftValue?) -> String {
        func le(_ count: Int) -> Int64? {
            guard b.count == count else { return nil }
            var v: UInt64 = 0
            for k in 0..<count { v |= UInt64(b[k]) << UInt64(8 * k) }
            return count == 4 ? Int64(Int32(truncatingIfNeeded: v)) : Int64(bitPattern: v)
        }
        let logical = column.logicalType ?? ""
        let scale = Int(element?[7]?.int ?? element?[10]?[5]?[1]?.int ?? 0)
        switch column.physicalType {
        case "BOOLEAN": return b.first == 1 ? "true" : "false"
        case "INT32", "INT64":
            guard let v = le(column.physicalType == "INT32" ? 4 : 8) else { return "?" }
            if logical.hasPrefix("DATE") { return Temporal.formatDate(Int32(truncatingIfNeeded: v)) }
            if logical.hasPrefix("TIMESTAMP") && logical.contains("MICROS") { return Temporal.formatTimestamp(v) }
            if logical.hasPrefix("DECIMAL") { return DecimalText.format(Int128(v), scale: scale) }
            return String(v)
        case "DOUBLE": return le(8).map { Value.formatDouble(Double(bitPattern: UInt64(bitPattern: $0))) } ?? "?"
        case "FLOAT":
            guard b.count == 4 else { return "?" }
            return String(Float(bitPattern: UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24))
        case "FIXED_LEN_BYTE_ARRAY" where logical.hasPrefix("DECIMAL") && b.count <= 16 && !b.isEmpty:
            var v = Int128(Int8(bitPattern: b[0]))
            for byte in b.dropFirst() { v = v << 8 | Int128(byte) }
            return DecimalText.format(v, scale: scale)
        default:
            if let text = String(validating: b, as: UTF8.self) { return text.count > 60 ? String(text.prefix(57)) + "..." : text }
            return "0x" + b.prefix(16).hexString
        }
    }
}
