import Crypto
import Foundation
import SluiceConfig
import SluiceCore
import SluiceFormats

/// Writes JSONL or CSV files (optionally gzip/zstd) into a directory, partitioned Hive-style.
///
/// Output is named deterministically per source unit (and per step of a unit that commits in
/// steps) — `<unit>-<hash>-part-0000.jsonl` — and
/// written under a temporary name that is renamed only when the unit commits. A re-run of the same
/// unit therefore replaces its files instead of adding a second copy, and a reader never sees a
/// partial file.
public final class FilesSink: Sink, @unchecked Sendable {
    public let config: FilesSinkConfig
    private var root = ""
    private var unitPrefix = ""
    /// The part being written in each partition directory, and the columns its CSV header names.
    private struct OpenPart {
        /// Text formats stream through a (compressing) file writer; Parquet buffers a row group.
        let writer: FileWriter?
        let parquet: ParquetWriter?
        let part: Int
        var header: Schema?

        var bytesWritten: Int64 { writer?.uncompressedBytes ?? parquet?.bytesWritten ?? 0 }

        func finish() throws {
            try writer?.finish()
            try parquet?.finish()
        }

        func abandon() {
            writer?.abandon()
            parquet?.abandon()
        }
    }
    private var open: [String: OpenPart] = [:]
    /// Part number to open next in a directory whose last part rolled over.
    private var nextPart: [String: Int] = [:]
    private var written: [(temp: String, final: String)] = []
    private let templates: [PartitionTemplate]

    public init(config: FilesSinkConfig) {
        self.config = config
        self.templates = config.partitionBy.map(PartitionTemplate.init)
    }

    public var storesStateTransactionally: Bool { false }

    private var compression: Compression {
        switch config.compression { case .none, .snappy: .none case .gzip: .gzip case .zstd: .zstd }
    }

    /// Parquet compresses pages inside the file, so its name carries no compression suffix.
    private var fileExtension: String {
        config.format == .parquet ? ".parquet" : "." + config.format.rawValue + compression.fileExtension
    }

    public func open(context: RunContext) async throws {
        root = context.resolve(config.path)
        try FileSystem.createDirectory(root)
        // Temporary parts of a run that was killed never got renamed: nothing refers to them.
        for file in files(where: { $0.hasPrefix(".") && $0.contains("-part-") && $0.hasSuffix(".tmp") }) { unlink(file) }
    }

    public func loadState(context: RunContext) async throws -> [String: String] { [:] }
    public func clearState(context: RunContext, keys: [String]?) async throws {}
    public func prepare(schema: Schema, context: RunContext) async throws {}

    public func begin(_ unit: WorkUnit) async throws {
        // Per unit, and per step of a unit that commits in steps (a table read page by page, a
        // change stream): each step's files keep their own names.
        let identity = unit.start.map { unit.id + "\n" + $0 } ?? unit.id
        let digest = SHA256.hash(data: Data(identity.utf8)).prefix(4).hexString
        let base = (unit.id as NSString).lastPathComponent.split(separator: ".").first.map(String.init) ?? "unit"
        let slug = String(base.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }.prefix(60))
        unitPrefix = "\(slug)-\(digest)-part-"
        open = [:]
        written = []
    }

    public func write(_ batch: RecordBatch) async throws -> [Rejection] {
        guard batch.rowCount > 0 else { return [] }
        if templates.isEmpty {
            try append(batch, dir: root)
            return []
        }
        var groups: [String: [Int]] = [:]
        var order: [String] = []
        for row in 0..<batch.rowCount {
            let dir = templates.map { $0.render(batch, row) }.joined(separator: "/")
            if groups[dir] == nil { order.append(dir) }
            groups[dir, default: []].append(row)
        }
        for dir in order { try append(batch.taking(groups[dir]!), dir: root + "/" + dir) }
        return []
    }

    private func append(_ batch: RecordBatch, dir: String) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(batch.byteSize * 2)
        var entry = try current(dir: dir, schema: batch.schema)
        if config.format != .jsonl, let header = entry.header, header != batch.schema {
            // New columns mid-file: a CSV header and a Parquet schema are fixed per file, so the
            // wider rows start a new part.
            try entry.finish()
            entry = try newPart(dir: dir, part: entry.part + 1, schema: batch.schema)
        }
        switch config.format {
        case .jsonl: JSONLWriter.append(batch, to: &bytes)
        case .csv:
            if entry.header == nil {
                CSVWriter.appendHeader(batch.schema, to: &bytes)
                entry.header = batch.schema
                open[dir] = entry
            }
            CSVWriter.append(batch, to: &bytes)
        case .parquet:
            try entry.parquet?.write(batch)
        }
        try entry.writer?.write(bytes)
        if entry.bytesWritten >= config.targetFileSize {
            // Roll over: the next write to this directory opens the following part.
            try entry.finish()
            open[dir] = nil
            nextPart[dir] = entry.part + 1
        }
    }

    private func current(dir: String, schema: Schema) throws -> OpenPart {
        if let e = open[dir] { return e }
        return try newPart(dir: dir, part: nextPart[dir] ?? 0, schema: schema)
    }

    private func newPart(dir: String, part: Int, schema: Schema) throws -> OpenPart {
        try FileSystem.createDirectory(dir)
        let name = unitPrefix + String(format: "%04d", part) + fileExtension
        let final = dir + "/" + name
        let temp = dir + "/." + name + ".tmp"
        let entry: OpenPart
        if config.format == .parquet {
            var options = ParquetWriterOptions()
            options.compression = ParquetCompression(rawValue: config.compression.rawValue) ?? .zstd
            let layout = config.parquet
            if let v = layout.rowGroupSize { options.rowGroupBytes = Int(v) }
            if let v = layout.pageSize { options.pageBytes = Int(v) }
            if let v = layout.dictionarySize { options.dictionaryBytes = Int(v) }
            if let v = layout.maxDictionarySize { options.maxDictionaryBytes = Int(v) }
            entry = OpenPart(writer: nil, parquet: try ParquetWriter(path: temp, schema: schema, options: options), part: part, header: schema)
        } else {
            entry = OpenPart(writer: try FileWriter(path: temp, compression: compression), parquet: nil, part: part, header: nil)
        }
        written.append((temp, final))
        open[dir] = entry
        return entry
    }

    public func commit(_ unit: WorkUnit, state: [StateEntry]) async throws {
        for (_, e) in open { try e.finish() }
        open = [:]
        nextPart = [:]
        for (temp, final) in written { try FileSystem.rename(temp, to: final) }
        // Parts left from an earlier, longer version of this unit would duplicate rows: remove them.
        let keep = Set(written.map(\.final))
        for file in staleParts() where !keep.contains(file) { unlink(file) }
        written = []
    }

    private func staleParts() -> [String] {
        let prefix = unitPrefix
        return files(where: { $0.hasPrefix(prefix) })
    }

    private func files(where matches: (String) -> Bool) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            if matches((rel as NSString).lastPathComponent) { out.append(root + "/" + rel) }
        }
        return out
    }

    public func rollback(_ unit: WorkUnit) async throws {
        for (_, e) in open { e.abandon() }
        for (temp, _) in written { unlink(temp) }
        open = [:]
        nextPart = [:]
        written = []
    }

    public func finish(context: RunContext) async throws {}
    public func close() async { try? await rollback(WorkUnit(id: "", location: "")) }
}

/// A partition directory template such as `year={created_at:%Y}` or `country={country}`.
struct PartitionTemplate {
    enum Piece { case text(String), field(String, format: String?) }
    let pieces: [Piece]

    init(_ template: String) {
        var pieces: [Piece] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            if open > rest.startIndex { pieces.append(.text(String(rest[..<open]))) }
            let inner = rest[rest.index(after: open)..<close]
            if let colon = inner.firstIndex(of: ":") {
                pieces.append(.field(String(inner[..<colon]), format: String(inner[inner.index(after: colon)...])))
            } else {
                pieces.append(.field(String(inner), format: nil))
            }
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { pieces.append(.text(String(rest))) }
        self.pieces = pieces
    }

    func render(_ batch: RecordBatch, _ row: Int) -> String {
        var out = ""
        for piece in pieces {
            switch piece {
            case .text(let t): out += t
            case .field(let name, let format):
                let value = batch.row(row)[name]
                out += Self.format(value, format)
            }
        }
        return out
    }

    static func format(_ value: Value, _ format: String?) -> String {
        if value.isNull { return "__null__" }
        if let format {
            let micros: Int64? = switch value {
            case .timestamp(let t): t
            case .date(let d): Int64(d) * Temporal.microsPerDay
            default: nil
            }
            if let micros {
                let c = Temporal.components(micros)
                var s = format
                for (k, v) in [("%Y", String(c.year)), ("%m", pad(c.month)), ("%d", pad(c.day)), ("%H", pad(c.hour)), ("%M", pad(c.minute))] {
                    s = s.replacingOccurrences(of: k, with: v)
                }
                return s
            }
        }
        let text = value.text
        return String(text.map { $0 == "/" || $0 == "\\" || $0 == "\0" ? "_" : $0 }).replacingOccurrences(of: "..", with: "_")
    }

    static func pad(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
}
