import Foundation
import SluiceConfig
@testable import SluiceConnectors
import SluiceCore
@testable import SluiceFormats
import Testing

/// A file parsed on several threads (`ParallelTextParser`) must give exactly what one parser
/// reading it in order gives: the same rows and values, line numbers, rejections and messages,
/// and the same inferred types. Inputs are cut into many small blocks so that every kind of
/// record meets a block boundary somewhere.
@Suite struct ParallelParseTests {
    /// Everything a read emitted, flattened: one entry per row and per rejection, in order. Nulls
    /// are left out: a JSON key first seen late in a batch is a column (of nulls) in the rows
    /// before it, and batches end at other rows in the two ways of reading.
    struct Outcome: Equatable, CustomStringConvertible {
        var rows: [String] = []
        var rejections: [String] = []
        var inferred: [String: DataType] = [:]

        var description: String { "\(rows.count) rows, \(rejections.count) rejections, \(inferred)" }

        /// The first row and rejection that differ, for the failure message.
        func difference(from other: Outcome) -> String {
            let row = zip(rows, other.rows).first { $0 != $1 }.map { "row: \($0.0)\n  vs: \($0.1)" } ?? "rows agree"
            let rejection = zip(rejections, other.rejections).first { $0 != $1 }.map { "rejection: \($0.0)\n        vs: \($0.1)" } ?? "rejections agree"
            return row + "\n" + rejection
        }

        mutating func add(_ batch: SourceBatch) {
            let b = batch.batch
            for r in 0..<b.rowCount {
                rows.append("\(b.origins[r]): " + b.row(r).fields.filter { !$0.1.isNull }.map { "\($0.0)=\($0.1.text)" }.joined(separator: "|"))
            }
            rejections += batch.rejected.map { "\($0.origin ?? -1) \($0.reason) \($0.field ?? "") \($0.message) [\($0.raw ?? "")]" }
        }

        /// Within a batch, parse rejections come before typing ones; batches end at other rows
        /// in the two ways of reading, so rejections compare in line order.
        mutating func sortRejections() {
            rejections = rejections.map { (Int($0.prefix { $0 != " " }) ?? 0, $0) }.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    static func sequential(_ bytes: [UInt8], _ format: ParallelTextParser.Format, declared: Schema = Schema([])) throws -> Outcome {
        let typer = BatchTyper(declared: declared)
        var out = Outcome()
        let next: () throws -> RawBatch?
        switch format {
        case .csv(let options):
            let csv = try CSVReader(reader: MemoryReader(bytes), options: options, location: "t")
            next = { try csv.next(maxRows: 50, maxBytes: 1 << 20) }
        case .jsonl:
            let jsonl = JSONLReader(reader: MemoryReader(bytes), location: "t")
            next = { try jsonl.next(maxRows: 50, maxBytes: 1 << 20) }
        }
        while let raw = try next() {
            let (batch, rejected) = typer.type(raw)
            out.add(SourceBatch(batch: batch, rejected: rejected))
        }
        out.inferred = typer.inferred
        out.sortRejections()
        return out
    }

    static func parallel(_ bytes: [UInt8], _ format: ParallelTextParser.Format, blockBytes: Int,
                         declared: Schema = Schema([])) async throws -> Outcome {
        let typer = BatchTyper(declared: declared)
        let parser = ParallelTextParser(format: format, location: "t", typer: typer, batchRows: 50, batchBytes: 1 << 20,
                                        parallelism: 3, blockBytes: blockBytes)
        final class Box: @unchecked Sendable { var outcome = Outcome() }
        let box = Box()
        try await parser.run(reader: MemoryReader(bytes)) { box.outcome.add($0) }
        box.outcome.inferred = typer.inferred
        box.outcome.sortRejections()
        return box.outcome
    }

    /// CSV with every record shape the parser knows, repeated with variations. The first record
    /// settles every column's inferred type: where a later value widens a type, the rows typed
    /// before depend on where batches end, which differs between the two ways of reading.
    static func trickyCSV(records: Int, strayQuotes: Bool, seed: UInt64) -> [UInt8] {
        var rng = SeededRandom(seed: seed)
        var text = "\u{FEFF}id,name,amount,note\r\n0,first,n/a,x\n"
        for i in 1...records {
            let eol = rng.next() % 5 == 0 ? "\r\n" : "\n"
            switch rng.next() % 12 {
            case 0: text += "\(i),\"multi\nline \"\"quoted\"\"\nvalue\",\(i).5,x" + eol
            case 1: text += "\(i),\"a, b\",\(i),\"\"" + eol
            case 2: text += "\(i),ragged" + eol                         // too few fields
            case 3: text += "\(i),\"closed\"junk,1,2" + eol            // text after a closing quote
            case 4: text += eol                                         // a blank line
            case 5: text += "\(i),caf\u{E9} \u{1F600},\(i % 7 == 0 ? "n/a" : "3"),NULL" + eol
            case 6 where strayQuotes: text += "\(i),5\" screen,\(i),ok" + eol  // a quote inside an unquoted field
            case 7: text += "\(i),\"\",,\"\"\"\"" + eol
            default: text += "\(i),plain \(rng.next() % 1000),\(Double(i) / 4),n" + eol
            }
        }
        var bytes = Array(text.utf8)
        // A field that is not valid UTF-8, so one rejection comes from typing.
        bytes += Array("\(records + 1),".utf8) + [0xC3, 0x28] + Array(",1,x\n".utf8)
        return bytes
    }

    static func trickyJSONL(records: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededRandom(seed: seed)
        var text = "\u{FEFF}{\"id\": 0, \"name\": \"first\", \"v\": \"text\"}\n"
        for i in 1...records {
            switch rng.next() % 10 {
            case 0: text += "{\"id\": \(i), \"name\": \"esc \\\"q\\\" \\u00e9\\n\", \"v\": \(Double(i) + 0.25)}\n"
            case 1: text += "not json at all\n"
            case 2: text += "\n"
            case 3: text += "{\"id\": \(i), \"nested\": {\"a\": [1, 2, {\"b\": null}]}, \"v\": \(i)}\r\n"
            case 4: text += "[1, 2]\n"
            case 5: text += "{\"id\": \(i), \"name\": \"late \(i)\", \"extra\": true}\n"
            case 6: text += "{\"id\": \(i), \"v\": \"text now\"}\n"
            default: text += "{\"id\": \(i), \"name\": \"n\(rng.next() % 100)\", \"v\": \(i)}\n"
            }
        }
        return Array((text + "{\"id\": \(records + 1), \"name\": \"no newline at the end\"}").utf8)
    }

    @Test(arguments: [64, 97, 1_000, 8_192])
    func csvIsParsedAsOneParserWould(blockBytes: Int) async throws {
        let bytes = Self.trickyCSV(records: 3_000, strayQuotes: false, seed: UInt64(blockBytes))
        let expected = try Self.sequential(bytes, .csv(CSVOptions()))
        let got = try await Self.parallel(bytes, .csv(CSVOptions()), blockBytes: blockBytes)
        #expect(expected.rows.count > 2_000 && expected.rejections.count > 300)
        #expect(got == expected, "\(got.difference(from: expected))")
    }

    /// A quote inside an unquoted field misleads the cutter's quote counting; the block that then
    /// ends inside a "quoted field" is read again in order with the rest of the file.
    @Test(arguments: [64, 1_000])
    func csvWithQuotesInsideUnquotedFieldsIsStillExact(blockBytes: Int) async throws {
        let bytes = Self.trickyCSV(records: 3_000, strayQuotes: true, seed: 7)
        let expected = try Self.sequential(bytes, .csv(CSVOptions()))
        let got = try await Self.parallel(bytes, .csv(CSVOptions()), blockBytes: blockBytes)
        #expect(got == expected, "\(got.difference(from: expected))")
    }

    @Test func csvWithDeclaredTypesRejectsTheSameRecords() async throws {
        let declared = Schema([Field("id", .int64), Field("amount", .decimal(precision: 12, scale: 2))])
        let bytes = Self.trickyCSV(records: 2_000, strayQuotes: false, seed: 3)
        let expected = try Self.sequential(bytes, .csv(CSVOptions()), declared: declared)
        let got = try await Self.parallel(bytes, .csv(CSVOptions()), blockBytes: 500, declared: declared)
        #expect(expected.rejections.contains { $0.contains("amount") })
        #expect(got == expected, "\(got.difference(from: expected))")
    }

    @Test func csvWithoutAHeaderTakesItsColumnsFromTheFirstRecord() async throws {
        var options = CSVOptions()
        options.header = false
        let bytes = Array((1...500).map { "\($0),x\($0),\($0 * 2)\n" }.joined().utf8)
        let expected = try Self.sequential(bytes, .csv(options))
        let got = try await Self.parallel(bytes, .csv(options), blockBytes: 100)
        #expect(expected.rows.first?.contains("column_1=1") == true)
        #expect(got == expected, "\(got.difference(from: expected))")
    }

    @Test(arguments: [64, 333, 4_096])
    func jsonLinesAreParsedAsOneParserWould(blockBytes: Int) async throws {
        let bytes = Self.trickyJSONL(records: 3_000, seed: UInt64(blockBytes))
        let expected = try Self.sequential(bytes, .jsonl)
        let got = try await Self.parallel(bytes, .jsonl, blockBytes: blockBytes)
        #expect(expected.rejections.count > 300)
        #expect(expected.inferred == ["id": .int64, "name": .string, "v": .string, "nested": .json, "extra": .bool])
        #expect(got == expected, "\(got.difference(from: expected))")
    }

    /// Types inferred from the first block decide how later blocks, parsed meanwhile from no
    /// inferred types at all, are typed: "007" stays text in every block, as in one pass.
    @Test func laterBlocksFollowTypesInferredFromEarlierOnes() async throws {
        var text = "code,n\n"
        for i in 0..<20 { text += "A\(i),\(i).5\n" }
        for i in 0..<2_000 { text += "00\(i),\(i).25\n" }
        let bytes = Array(text.utf8)
        let expected = try Self.sequential(bytes, .csv(CSVOptions()))
        let got = try await Self.parallel(bytes, .csv(CSVOptions()), blockBytes: 256)
        #expect(expected.inferred == ["code": .string, "n": .double])
        #expect(expected.rows.last?.contains("code=001999") == true)
        #expect(got == expected, "\(got.difference(from: expected))")
    }

    /// Wired into the files source: a file over the size from which files are parsed in
    /// parallel reads exactly as the same content in a small file (read by one parser).
    @Test func filesSourceReadsABigFileInParallelExactly() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-parallel-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = Self.trickyCSV(records: 400_000, strayQuotes: false, seed: 11)
        #expect(Int64(bytes.count) >= FilesSource.parallelParseBytes)
        let path = dir + "/big.csv"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let source = FilesSource(config: FilesSourceConfig(path: path, format: .csv, incremental: .none), schema: SchemaConfig())
        let context = RunContext(pipeline: "p", runID: "r")
        let units = try await source.plan(state: [:], context: context)
        final class Box: @unchecked Sendable { var outcome = Outcome(); var batches = 0 }
        let box = Box()
        _ = try await source.read(units[0], context: context) { box.outcome.add($0); box.batches += 1 }
        var expected = try Self.sequential(bytes, .csv(CSVOptions()))
        expected.inferred = [:]
        box.outcome.sortRejections()
        #expect(box.outcome == expected, "\(box.outcome.difference(from: expected))")
        #expect(box.batches > 10)
    }
}
