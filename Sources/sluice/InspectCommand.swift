import ArgumentParser
import Foundation
import Sluice

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a Parquet file's schema, row groups, encodings, compression and statistics."
    )

    @Argument(help: "A .parquet file.") var file: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let info: ParquetFileInfo
        do {
            info = try ParquetFileInfo.read(path: file)
        } catch {
            Terminal.printError("sluice inspect: \(error)")
            throw ExitCode(1)
        }
        print(json ? Self.json(info) : Self.text(info))
    }

    static func text(_ info: ParquetFileInfo) -> String {
        var lines = ["\(info.path): \(info.rows) rows, \(info.rowGroups.count) row group(s), \(info.fileBytes) bytes, format version \(info.version)"]
        if let by = info.createdBy { lines.append("created by: \(by)") }
        lines.append("schema:")
        for c in info.columns {
            lines.append("  \(c.name): \(c.physicalType)\(c.logicalType.map { " \($0)" } ?? "") \(c.repetition)")
        }
        for (i, g) in info.rowGroups.enumerated() {
            lines.append("row group \(i): \(g.rows) rows, \(g.bytes) bytes uncompressed")
            for c in g.columns {
                var line = "  \(c.column): \(c.codec), \(c.encodings.joined(separator: "/")), \(c.compressedBytes) bytes (\(c.uncompressedBytes) uncompressed)"
                if let n = c.nullCount { line += ", nulls \(n)" }
                if let min = c.min, let max = c.max { line += ", min \(min), max \(max)" }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ info: ParquetFileInfo) -> String {
        func q(_ s: String?) -> String { s.map(JSONText.quoted) ?? "null" }
        let columns = info.columns.map {
            "{\"name\":\(q($0.name)),\"physical_type\":\(q($0.physicalType)),\"logical_type\":\(q($0.logicalType)),\"repetition\":\(q($0.repetition))}"
        }
        let groups = info.rowGroups.map { g in
            "{\"rows\":\(g.rows),\"bytes\":\(g.bytes),\"columns\":[" + g.columns.map { c in
                "{\"column\":\(q(c.column)),\"codec\":\(q(c.codec)),\"encodings\":[\(c.encodings.map(JSONText.quoted).joined(separator: ","))],"
                    + "\"values\":\(c.values),\"compressed_bytes\":\(c.compressedBytes),\"uncompressed_bytes\":\(c.uncompressedBytes),"
                    + "\"null_count\":\(c.nullCount.map(String.init) ?? "null"),\"min\":\(q(c.min)),\"max\":\(q(c.max))}"
            }.joined(separator: ",") + "]}"
        }
        return "{\"file\":\(q(info.path)),\"rows\":\(info.rows),\"bytes\":\(info.fileBytes),\"created_by\":\(q(info.createdBy)),"
            + "\"columns\":[\(columns.joined(separator: ","))],\"row_groups\":[\(groups.joined(separator: ","))]}"
    }
}
