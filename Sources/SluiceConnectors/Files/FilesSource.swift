import Crypto
import Foundation
import SluiceConfig
import SluiceCore
import SluiceFormats

/// Reads local files matching a glob as CSV, JSONL or JSON, compressed or not.
///
/// Each file is a unit. With `incremental: new_files` a file's path, size and SHA-256 are saved
/// when its rows commit; the next run skips files whose size and content are unchanged and reads a
/// changed file again. The hash is computed from the bytes as they stream through the parser, so
/// a new file is read once.
public final class FilesSource: Source, @unchecked Sendable {
    public let config: FilesSourceConfig
    private let typer: BatchTyper

    public init(config: FilesSourceConfig, schema: SchemaConfig) {
        self.config = config
        self.typer = BatchTyper(declared: schema.declared, formats: schema.formats)
    }

    static let keyPrefix = "file:"
    /// Files from this size on are parsed on all cores (smaller ones are not worth the threads).
    static let parallelParseBytes: Int64 = 8 << 20

    private var csvOptions: CSVOptions {
        var options = CSVOptions()
        options.header = config.csvHeader
        options.delimiter = config.csvDelimiter
        options.quote = config.csvQuote
        options.nullValues = config.csvNullValues
        options.columnNames = config.csvColumns
        return options
    }

    struct Manifest: Codable { var size: Int64; var sha256: String }

    public func plan(state: [String: String], context: RunContext) async throws -> [WorkUnit] {
        let pattern = context.resolve(config.path)
        let files = FileSystem.glob(pattern)
        var units: [WorkUnit] = []
        for path in files {
            let id = relative(path, to: context.baseDirectory)
            let size = FileSystem.size(path) ?? 0
            if config.incremental == .new_files, let saved = state[Self.keyPrefix + id],
               let manifest = try? JSONDecoder().decode(Manifest.self, from: Data(saved.utf8)), manifest.size == size,
               (try? Self.sha256(of: path)) == manifest.sha256 {
                continue
            }
            units.append(WorkUnit(id: id, location: id, sizeBytes: size))
        }
        return units
    }

    private func relative(_ path: String, to base: String) -> String {
        guard base != ".", !base.isEmpty, path.hasPrefix(base + "/") else { return path }
        return String(path.dropFirst(base.count + 1))
    }

    static func sha256(of path: String) throws -> String {
        let reader = try FileReader(path: path)
        var hasher = SHA256()
        var buffer: [UInt8] = []
        while true {
            buffer.removeAll(keepingCapacity: true)
            if try reader.read(into: &buffer, max: 1 << 20) == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        }
        return hasher.finalize().hexString
    }

    public func read(_ unit: WorkUnit, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        let path = context.resolve(unit.id)
        if config.format == .parquet { return try await readParquet(unit, path: path, context: context, emit: emit) }
        final class Hash { var hasher = SHA256() }
        let hash = Hash()
        let compression: Compression? = switch config.compression {
        case .auto: nil
        case .none: Compression.none
        case .gzip: .gzip
        case .zstd: .zstd
        }
        // The manifest's content hash is taken from the bytes as they stream past; without a
        // manifest there is nothing to hash.
        let observer: ((UnsafeRawBufferPointer) -> Void)? = config.incremental == .new_files ? { hash.hasher.update(bufferPointer: $0) } : nil
        let reader = try openByteReader(path: path, compression: compression, observer: observer)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if cores > 1, (unit.sizeBytes ?? 0) >= Self.parallelParseBytes, config.format == .csv || config.format == .jsonl {
            let format: ParallelTextParser.Format = config.format == .csv ? .csv(csvOptions) : .jsonl
            let parser = ParallelTextParser(format: format, location: unit.location, typer: typer,
                                            batchRows: context.batchRows, batchBytes: context.batchBytes, parallelism: cores)
            try await parser.run(reader: reader, emit: emit)
        } else {
            let next: () throws -> RawBatch?
            switch config.format {
            case .csv:
                let csv = try CSVReader(reader: reader, options: csvOptions, location: unit.location)
                next = { try csv.next(maxRows: context.batchRows, maxBytes: context.batchBytes) }
            case .jsonl:
                let jsonl = JSONLReader(reader: reader, location: unit.location)
                next = { try jsonl.next(maxRows: context.batchRows, maxBytes: context.batchBytes) }
            case .json:
                let doc = JSONDocumentReader(reader: reader, location: unit.location, recordsPath: config.recordsPath)
                next = { try doc.next(maxRows: context.batchRows, maxBytes: context.batchBytes) }
            case .parquet:
                preconditionFailure("handled by readParquet")
            }
            while let raw = try next() {
                let (batch, rejected) = typer.type(raw)
                try await emit(SourceBatch(batch: batch, rejected: rejected, bytesRead: raw.bytesRead))
            }
        }
        guard config.incremental == .new_files else { return [] }
        let digest = hash.hasher.finalize().hexString
        let manifest = Manifest(size: reader.rawBytesRead, sha256: digest)
        let value = String(decoding: try JSONEncoder().encode(manifest), as: UTF8.self)
        return [StateEntry(key: Self.keyPrefix + unit.id, value: value)]
    }

    /// Parquet is typed already: row groups are read with `ParquetReader`, cut into batches, and
    /// only declared columns of another type are converted (a value that does not convert rejects
    /// its record, as for text formats).
    private func readParquet(_ unit: WorkUnit, path: String, context: RunContext,
                             emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        let reader: ParquetReader
        do { reader = try ParquetReader(path: path) } catch var e as SluiceError { e.location = unit.location; throw e }
        var row = 0
        while let group = try readGroup(reader, unit) {
            var start = 0
            while start < group.rowCount {
                let end = min(group.rowCount, start + context.batchRows)
                var batch = group.taking(Array(start..<end))
                batch = RecordBatch(schema: batch.schema, columns: batch.columns, origins: Array((row + start + 1)...(row + end)))
                let (converted, rejected) = conformToDeclared(batch)
                // Progress in bytes: the file's share for these rows.
                let bytes = reader.rowCount > 0 ? reader.fileBytes * (end - start) / reader.rowCount : 0
                try await emit(SourceBatch(batch: converted, rejected: rejected, bytesRead: bytes))
                start = end
            }
            row += group.rowCount
        }
        guard config.incremental == .new_files else { return [] }
        let manifest = Manifest(size: FileSystem.size(path) ?? 0, sha256: try Self.sha256(of: path))
        return [StateEntry(key: Self.keyPrefix + unit.id, value: String(decoding: try JSONEncoder().encode(manifest), as: UTF8.self))]
    }

    private func readGroup(_ reader: ParquetReader, _ unit: WorkUnit) throws -> RecordBatch? {
        do { return try reader.next() } catch var e as SluiceError { e.location = unit.location; throw e }
    }

    private func conformToDeclared(_ batch: RecordBatch) -> (RecordBatch, [Rejection]) {
        var out = batch
        var bad: [Int: (String, String)] = [:]
        for field in typer.declared.fields {
            guard let i = out.schema.index(of: field.name) else { continue }
            var column = out.columns[i]
            if column.type != field.type {
                var failures: [Int] = []
                let source = column
                column = column.converted(to: field.type, failures: &failures)
                for r in failures where bad[r] == nil { bad[r] = (field.name, "value '\(source.value(at: r).text.prefix(200))' is not a valid \(field.type)") }
            }
            out.setColumn(field, column)
        }
        guard !bad.isEmpty else { return (out, []) }
        let rejected = bad.keys.sorted().map { r in
            Rejection(reason: .schema, field: bad[r]!.0, message: bad[r]!.1, origin: batch.origins[r], record: batch.row(r).fields)
        }
        return (out.taking((0..<out.rowCount).filter { bad[$0] == nil }), rejected)
    }
}
