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
        let next: () throws -> RawBatch?
        switch config.format {
        case .csv:
            var options = CSVOptions()
            options.header = config.csvHeader
            options.delimiter = config.csvDelimiter
            options.quote = config.csvQuote
            options.nullValues = config.csvNullValues
            options.columnNames = config.csvColumns
            let csv = try CSVReader(reader: reader, options: options, location: unit.location)
            next = { try csv.next(maxRows: context.batchRows, maxBytes: context.batchBytes) }
        case .jsonl:
            let jsonl = JSONLReader(reader: reader, location: unit.location)
            next = { try jsonl.next(maxRows: context.batchRows, maxBytes: context.batchBytes) }
        case .json:
            let doc = JSONDocumentReader(reader: reader, location: unit.location, recordsPath: config.recordsPath)
            next = { try doc.next(maxRows: context.batchRows, maxBytes: context.batchBytes) }
        case .parquet:
            throw SluiceError(.source, "reading parquet is not available in this version", location: unit.location)
        }
        while let raw = try next() {
            let (batch, rejected) = typer.type(raw)
            try await emit(SourceBatch(batch: batch, rejected: rejected, bytesRead: raw.bytesRead))
        }
        guard config.incremental == .new_files else { return [] }
        let digest = hash.hasher.finalize().hexString
        let manifest = Manifest(size: reader.rawBytesRead, sha256: digest)
        let value = String(decoding: try JSONEncoder().encode(manifest), as: UTF8.self)
        return [StateEntry(key: Self.keyPrefix + unit.id, value: value)]
    }
}
