import Foundation
import Sluice
import Testing

/// Schema versions and `schema.compatibility`, through the real binary: a first file sets version 1,
/// a second one changes the table, and each level accepts or refuses the change.
@Suite struct SchemaContractTests {
    func project(_ dir: String, compatibility: String, extraColumn: String = "") throws {
        try write("""
            version: 1
            pipelines:
              orders:
                source: { type: files, path: "data/*.csv" }
                schema:
                  columns:
                    id: { type: int64, primary_key: true }
            \(extraColumn)
                  compatibility: \(compatibility)
                sink: { type: sqlite, path: out.db, table: orders, mode: merge }
            """, to: dir + "/sluice.yaml")
    }

    enum Change: String, CaseIterable { case addNullable, retype, addNotNull, removeNotNull }

    static let region = "        region: { type: string, nullable: false }"

    static let cases: [(String, Change, Bool)] = [
        ("none", .addNullable, true), ("none", .retype, true), ("none", .addNotNull, true), ("none", .removeNotNull, true),
        ("backward", .addNullable, true), ("backward", .retype, true), ("backward", .addNotNull, false), ("backward", .removeNotNull, true),
        ("forward", .addNullable, true), ("forward", .retype, false), ("forward", .addNotNull, true), ("forward", .removeNotNull, false),
        ("full", .addNullable, true), ("full", .retype, false), ("full", .addNotNull, false), ("full", .removeNotNull, false),
    ]

    @Test(arguments: cases)
    func eachLevelAcceptsOrRefusesEachChange(_ level: String, _ change: Change, _ accepted: Bool) throws {
        let dir = try makeTemporaryDirectory("contract-\(level)-\(change.rawValue)")
        if change == .removeNotNull {
            // Version 1 has a required column that the next file and configuration drop.
            try project(dir, compatibility: level, extraColumn: Self.region)
            try write("id,qty,region\n1,10,eu\n2,20,us\n", to: dir + "/data/1.csv")
        } else {
            try project(dir, compatibility: level)
            try write("id,qty\n1,10\n2,20\n", to: dir + "/data/1.csv")
        }
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        switch change {
        case .addNullable: try write("id,qty,note\n3,30,hello\n", to: dir + "/data/2.csv")
        case .retype: try write("id,qty\n3,lots\n", to: dir + "/data/2.csv")
        case .addNotNull:
            try project(dir, compatibility: level, extraColumn: Self.region)
            try write("id,qty,region\n3,30,eu\n", to: dir + "/data/2.csv")
        case .removeNotNull:
            try project(dir, compatibility: level)
            try write("id,qty\n3,30\n", to: dir + "/data/2.csv")
        }
        let diff = try SluiceProcess.run(["schema", "diff", "orders", "--json"], in: dir)
        #expect(diff.status == 0, "\(diff.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(diff.stdout.utf8)) as! [String: Any]
        #expect(doc["version"] as? Int == 1)
        let violations = (doc["violations"] as! [String: [String]])[level] ?? []
        #expect(violations.isEmpty == accepted, "\(level) \(change): \(doc)")

        let run = try SluiceProcess.run(["run", "--json"], in: dir)
        let rows = try query(dir + "/out.db", "SELECT count(*) FROM orders")
        let versions = try SluiceProcess.run(["schema", "versions", "orders", "--json"], in: dir).stdout
        if accepted, change == .removeNotNull {
            // Allowed, but the table still requires the column: the row waits in quarantine.
            #expect(run.status == 0, "\(run.stdout)")
            #expect(rows == [["2"]])
            #expect(try RunSummary.parse(run.stdout).pipeline("orders")?.records_rejected == 1, "\(run.stdout)")
        } else if accepted {
            #expect(run.status == 0, "\(run.stdout)")
            #expect(rows == [["3"]])
            #expect(versions.contains("\"version\":2"), "\(versions)")
        } else {
            #expect(run.status == 1)
            #expect(try RunSummary.parse(run.stdout).pipeline("orders")?.error?.contains("is not \(level)-compatible") == true, "\(run.stdout)")
            #expect(rows == [["2"]], "the unit with the change did not land")
            #expect(!versions.contains("\"version\":2"))
        }
    }

    @Test func versionsListWhatEachRunChangedAndDiffShowsTheDDL() throws {
        let dir = try makeTemporaryDirectory("contract-versions")
        try project(dir, compatibility: "backward")
        try write("id,qty\n1,10\n", to: dir + "/data/1.csv")
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        try write("id,qty,score\n2,20,1.5\n", to: dir + "/data/2.csv")
        let diff = try SluiceProcess.run(["schema", "diff", "orders"], in: dir).stdout
        #expect(diff.contains("+ score double") && diff.contains("backward (configured): compatible")
                && diff.contains("ALTER TABLE \"orders\" ADD COLUMN \"score\""), "\(diff)")
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        let text = try SluiceProcess.run(["schema", "versions", "orders"], in: dir).stdout
        #expect(text.contains("version 1") && text.contains("+ qty int64") && text.contains("version 2") && text.contains("+ score double"), "\(text)")
        #expect(try SluiceProcess.run(["schema", "diff", "orders"], in: dir).stdout.contains("no change"))
        // Another run without changes records nothing new.
        try write("id,qty,score\n3,30,2.5\n", to: dir + "/data/3.csv")
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        #expect(!(try SluiceProcess.run(["schema", "versions", "orders"], in: dir).stdout.contains("version 3")))
    }
}
