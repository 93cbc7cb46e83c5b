import Foundation
import Sluice
import Testing

/// `sluice inspect` and the footer reader behind it, on good files and on damaged ones.
@Suite struct ParquetInspectTests {
    func writeSample(_ dir: String) throws -> String {
        let path = dir + "/s.parquet"
        let schema = Schema([Field("id", .int64, nullable: false), Field("status", .string), Field("at", .timestamp)])
        var id = Column(type: .int64), status = Column(type: .string), at = Column(type: .timestamp)
        for i in 0..<1000 {
            id.append(int64: Int64(i) - 10)
            status.append(i % 10 == 0 ? .null : .string(["new", "paid"][i % 2]))
            at.append(int64: 1_709_362_800_000_000 + Int64(i) * 1_000_000)
        }
        let writer = try ParquetWriter(path: path, schema: schema)
        try writer.write(RecordBatch(schema: schema, columns: [id, status, at]))
        try writer.finish()
        return path
    }

    @Test func inspectReportsSchemaEncodingsAndStatistics() throws {
        let dir = try makeTemporaryDirectory("inspect")
        let path = try writeSample(dir)
        let result = try SluiceProcess.run(["inspect", path, "--json"], in: dir)
        #expect(result.status == 0, "\(result.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(doc["rows"] as? Int == 1000)
        let columns = doc["columns"] as! [[String: Any]]
        #expect(columns.map { "\($0["name"]!) \($0["physical_type"]!) \($0["logical_type"] as? String ?? "-") \($0["repetition"]!)" }
                == ["id INT64 - REQUIRED", "status BYTE_ARRAY STRING OPTIONAL", "at INT64 TIMESTAMP(MICROS, UTC) OPTIONAL"])
        let chunks = (doc["row_groups"] as! [[String: Any]])[0]["columns"] as! [[String: Any]]
        #expect(chunks[0]["min"] as? String == "-10" && chunks[0]["max"] as? String == "989")
        #expect(chunks[1]["null_count"] as? Int == 100 && chunks[1]["min"] as? String == "new" && chunks[1]["max"] as? String == "paid")
        #expect((chunks[1]["encodings"] as! [String]).contains("RLE_DICTIONARY"))
        #expect(chunks[2]["min"] as? String == "2024-03-02T07:00:00Z")
        #expect(chunks.allSatisfy { $0["codec"] as? String == "ZSTD" })
    }

    @Test(arguments: ["empty", "short", "bad-start", "truncated", "footer-length", "footer-bytes"])
    func damagedFilesGiveAClearError(_ damage: String) throws {
        let dir = try makeTemporaryDirectory("inspect")
        let path = try writeSample(dir)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        switch damage {
        case "empty": bytes = []
        case "short": bytes = Array("PAR1PAR1".utf8)
        case "bad-start": bytes[0] = UInt8(ascii: "X")
        case "truncated": bytes.removeLast(bytes.count / 3)
        case "footer-length": bytes[bytes.count - 5] = 0x7F   // a footer larger than the file
        default:
            // Scramble the footer itself, keeping magic and length.
            let n = bytes.count
            let length = Int(bytes[n - 8]) | Int(bytes[n - 7]) << 8
            for k in (n - 8 - length)..<(n - 8) where k % 3 == 0 { bytes[k] ^= 0xA5 }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let result = try SluiceProcess.run(["inspect", path], in: dir)
        #expect(result.status == 1)
        #expect(result.stderr.contains(path) && result.stderr.contains("not a readable Parquet file"), "\(result.stderr)")
    }

    /// Random footers must end in an error or a result, never a crash or a hang.
    @Test func fuzzedFootersNeverCrash() throws {
        let dir = try makeTemporaryDirectory("inspect")
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: try writeSample(dir))))
        var random = SeededRandom(seed: 0xFEED)
        let path = dir + "/fuzz.parquet"
        for _ in 0..<300 {
            var bytes = original
            let n = bytes.count
            let length = Int(bytes[n - 8]) | Int(bytes[n - 7]) << 8
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                bytes[Int.random(in: (n - 8 - length)..<(n - 8), using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                _ = try ParquetFileInfo.read(path: path)
            } catch let e as SluiceError {
                #expect(e.location == path)
            }
        }
    }
}
