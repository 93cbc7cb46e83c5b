#if canImport(Glibc)
import Glibc
#endif
import CZlib
import CZstd
import SluiceCore

/// Compression codecs of Parquet pages this writer produces.
public enum ParquetCompression: String, Sendable, CaseIterable {
    case none, snappy, gzip, zstd

    /// Parquet's `CompressionCodec` enum value.
    var codec: Int32 {
        switch self { case .none: 0 case .snappy: 1 case .gzip: 2 case .zstd: 6 }
    }
}

public struct ParquetWriterOptions: Sendable {
    public var compression: ParquetCompression = .zstd
    /// A row group is written when its column chunks hold this many bytes (uncompressed). Default 128 MiB.
    public var rowGroupBytes = 128 << 20
    /// Target uncompressed size of a data page. Default 1 MiB.
    public var pageBytes = 1 << 20
    /// A column chunk's dictionary (values and their 4-byte lengths) is kept up to this size; past
    /// it, only while its values repeat (see `maxDictionaryBytes`). 0 disables dictionaries.
    /// Default 1 MiB, pyarrow's fixed limit.
    public var dictionaryBytes = 1 << 20
    /// The largest a dictionary of repeated values may grow before the chunk falls back to PLAIN.
    /// Default 8 MiB.
    public var maxDictionaryBytes = 8 << 20
    /// Written as `created_by`; readers parse "<app> version <x.y.z>" to decide which statistics to trust.
    public var createdBy = "sluice version 0.1.0"
    public init() {}
}

/// Writes a Parquet file (format 2.x metadata, data page v1, PLAIN values, RLE definition levels)
/// from record batches of one schema. Row groups are buffered compressed in memory, so memory is
/// bounded by `rowGroupBytes`. The file is only valid after `finish()`.
public final class ParquetWriter {
    public let path: String
    public let schema: Schema
    private let options: ParquetWriterOptions
    private let file: FileWriter
    private var offset: Int64 = 0
    private var columns: [ParquetColumnChunk]
    private var rowGroups: [RowGroupMetadata] = []
    private var rowsInGroup = 0
    private var totalRows: Int64 = 0

    public init(path: String, schema: Schema, options: ParquetWriterOptions = ParquetWriterOptions()) throws {
        self.path = path
        self.schema = schema
        self.options = options
        file = try FileWriter(path: path, compression: .none)
        columns = schema.fields.map { ParquetColumnChunk(field: $0, options: options) }
        try emit(Array("PAR1".utf8))
    }

    private func emit(_ bytes: [UInt8]) throws {
        try file.write(bytes)
        offset += Int64(bytes.count)
    }

    public func write(_ batch: RecordBatch) throws {
        guard batch.rowCount > 0 else { return }
        for (i, field) in schema.fields.enumerated() {
            guard let column = batch[field.name] else {
                throw SluiceError(.sink, "batch lacks column \(field.name) of the Parquet schema", location: path)
            }
            try columns[i].append(column)
        }
        rowsInGroup += batch.rowCount
        if columns.reduce(0, { $0 + $1.bufferedBytes }) >= options.rowGroupBytes { try flushRowGroup() }
    }

    private func flushRowGroup() throws {
        guard rowsInGroup > 0 else { return }
        var chunks: [ColumnChunkMetadata] = []
        for i in columns.indices {
            let pages = try columns[i].finishChunk()
            var meta = columns[i].metadata
            if pages.dictionaryPageLength > 0 { meta.dictionaryPageOffset = offset }
            meta.dataPageOffset = offset + Int64(pages.dictionaryPageLength)
            for page in pages.pages { try emit(page) }
            chunks.append(meta)
            columns[i] = ParquetColumnChunk(field: schema.fields[i], options: options)
        }
        rowGroups.append(RowGroupMetadata(columns: chunks, numRows: Int64(rowsInGroup)))
        totalRows += Int64(rowsInGroup)
        rowsInGroup = 0
    }

    /// Writes the last row group and the footer, then syncs and closes the file.
    public func finish() throws {
        try flushRowGroup()
        var w = ThriftCompactWriter()
        w.writeStruct { w in
            w.field(1, i32: 2)
            w.field(2, structs: [Field?.none] + schema.fields.map { Optional($0) }) { w, field in
                if let field { ParquetSchemaElement.write(field, to: &w) } else {
                    w.field(4, string: "schema")
                    w.field(5, i32: Int32(self.schema.count))
                }
            }
            w.field(3, i64: totalRows)
            w.field(4, structs: rowGroups) { w, group in group.write(to: &w) }
            w.field(6, string: options.createdBy)
            // TYPE_DEFINED_ORDER for every column: tells readers the min/max statistics use the
            // type's natural order, so they trust them for skipping.
            w.field(7, structs: schema.fields) { w, _ in w.field(1, struct: { _ in }) }
        }
        let footer = w.bytes
        try emit(footer)
        var length = UInt32(footer.count).littleEndian
        try emit(withUnsafeBytes(of: &length) { Array($0) } + Array("PAR1".utf8))
        try file.finish()
    }

    public func abandon() { file.abandon() }

    /// Bytes in the file so far plus the row group still buffered (uncompressed), for rollover.
    public var bytesWritten: Int64 { offset + Int64(columns.reduce(0) { $0 + $1.bufferedBytes }) }
}

struct RowGroupMetadata {
    var columns: [ColumnChunkMetadata]
    var numRows: Int64

    func write(to w: inout ThriftCompactWriter) {
        w.field(1, structs: columns) { w, c in
            w.field(2, i64: c.dictionaryPageOffset ?? c.dataPageOffset)
            w.field(3, struct: { c.write(to: &$0) })
        }
        w.field(2, i64: columns.reduce(0) { $0 + $1.uncompressedSize })
        w.field(3, i64: numRows)
    }
}

struct ColumnChunkMetadata {
    var physicalType: Int32
    var name: String
    var codec: Int32
    var numValues: Int64 = 0
    var uncompressedSize: Int64 = 0
    var compressedSize: Int64 = 0
    var dataPageOffset: Int64 = 0
    var dictionaryPageOffset: Int64?
    var usesDictionary = false
    var nullCount: Int64 = 0
    var min: [UInt8]?
    var max: [UInt8]?

    func write(to w: inout ThriftCompactWriter) {
        w.field(1, i32: physicalType)
        // PLAIN (values, dictionary page), RLE (levels), RLE_DICTIONARY (indices).
        w.field(2, i32s: usesDictionary ? [0, 3, 8] : [0, 3])
        w.field(3, strings: [name])
        w.field(4, i32: codec)
        w.field(5, i64: numValues)
        w.field(6, i64: uncompressedSize)
        w.field(7, i64: compressedSize)
        w.field(9, i64: dataPageOffset)
        if let dictionaryPageOffset { w.field(11, i64: dictionaryPageOffset) }
        w.field(12, struct: { s in
            s.field(3, i64: nullCount)
            if let max { s.field(5, binary: max) }
            if let min { s.field(6, binary: min) }
        })
    }
}

/// Parquet types of a Sluice column: physical type, logical annotation, width.
enum ParquetSchemaElement {
    static let boolean: Int32 = 0, int32: Int32 = 1, int64: Int32 = 2, double: Int32 = 5, byteArray: Int32 = 6, fixedLenByteArray: Int32 = 7

    static func physicalType(_ type: DataType) -> Int32 {
        switch type {
        case .bool: boolean
        case .int64, .timestamp: int64
        case .date: int32
        case .double: double
        case .decimal(let p, _): p <= 9 ? int32 : p <= 18 ? int64 : fixedLenByteArray
        case .string, .bytes, .json: byteArray
        }
    }

    static func write(_ field: Field, to w: inout ThriftCompactWriter) {
        w.field(1, i32: physicalType(field.type))
        if case .decimal(let p, _) = field.type, p > 18 { w.field(2, i32: 16) }
        w.field(3, i32: field.nullable ? 1 : 0)
        w.field(4, string: field.name)
        switch field.type {   // converted_type, for older readers
        case .string: w.field(6, i32: 0)
        case .json: w.field(6, i32: 19)
        case .date: w.field(6, i32: 6)
        case .timestamp: w.field(6, i32: 10)
        case .decimal(let p, let s):
            w.field(6, i32: 5)
            w.field(7, i32: Int32(s))
            w.field(8, i32: Int32(p))
        default: break
        }
        switch field.type {   // logicalType union
        case .string: w.field(10, struct: { $0.field(1, struct: { _ in }) })
        case .json: w.field(10, struct: { $0.field(12, struct: { _ in }) })
        case .date: w.field(10, struct: { $0.field(6, struct: { _ in }) })
        case .timestamp:
            w.field(10, struct: { l in
                l.field(8, struct: { t in
                    t.field(1, bool: true)
                    t.field(2, struct: { $0.field(2, struct: { _ in }) })   // MICROS
                })
            })
        case .decimal(let p, let s):
            w.field(10, struct: { l in
                l.field(5, struct: { d in
                    d.field(1, i32: Int32(s))
                    d.field(2, i32: Int32(p))
                })
            })
        default: break
        }
    }
}
