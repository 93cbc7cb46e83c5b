import Foundation
import Sluice
import Testing

extension PostgresTests {
    /// examples/nba: teams before games and players (foreign keys hold), a broken independent
    /// pipeline fails alone, and a re-run leaves the tables identical.
    @Test func nbaExampleLoadsInDependencyOrder() throws {
        let dir = try makeTemporaryDirectory("nba")
        try copyDirectory(SluiceProcess.packageRoot.appendingPathComponent("examples/nba").path, to: dir + "/nba")
        let schema = "nba_\(UInt32.random(in: 0...UInt32.max))"
        // The example's tables live in schema nba; give this run its own.
        let yaml = try String(contentsOfFile: dir + "/nba/sluice.yaml", encoding: .utf8).replacingOccurrences(of: "table: nba.", with: "table: \(schema).")
            .replacingOccurrences(of: "\"nba.teams(team_id)\"", with: "\"\(schema).teams(team_id)\"")
        try write(yaml, to: dir + "/nba/sluice.yaml")
        let env = ["PG_URL": try Self.serverURL()]
        let first = try SluiceProcess.run(["run", "--json"], in: dir + "/nba", environment: env)
        let summary = try RunSummary.parse(first.stdout)
        #expect(summary.status == "partial")
        #expect(summary.pipelines.map { "\($0.name):\($0.status):\($0.records_written)" }.sorted()
                == ["arenas:failed:0", "games:succeeded:4", "players:succeeded:6", "teams:succeeded:4"], "\(first.stderr)")
        let snapshot = """
            SELECT g.game_id, h.abbreviation, a.abbreviation, g.game_date, (SELECT count(*) FROM \(schema).players p WHERE p.team_id = h.team_id)
            FROM \(schema).games g JOIN \(schema).teams h ON h.team_id = g.home_team_id JOIN \(schema).teams a ON a.team_id = g.away_team_id ORDER BY 1
            """
        let before = try Self.psql(snapshot)
        #expect(before == ["1001|BOS|LAL|2024-10-22|2", "1002|GSW|MIA|2024-10-23|1", "1003|LAL|GSW|2024-10-25|2", "1004|MIA|BOS|2024-10-26|1"])
        #expect(try Self.psql("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = '\(schema)'::regnamespace") == ["3"])
        _ = try SluiceProcess.run(["run", "--full-refresh"], in: dir + "/nba", environment: env)
        #expect(try Self.psql(snapshot) == before)
    }
}

extension PostgresTests {
    /// `sluice doctor`: every problem found without moving data, each with a fix.
    @Test func doctorFindsEachProblemWithAFix() throws {
        let s = try Self.freshSchema("doctor")
        try Self.psql("CREATE TABLE \(s).present (id int PRIMARY KEY)")
        let dir = try makeTemporaryDirectory("doctor")
        try project("""
            pipelines:
              good:
                source: { type: postgres, url: "$URL", table: \(s).present }
                sink: { type: postgres, url: "$URL", table: \(s).copy }
              missing_table:
                source: { type: postgres, url: "$URL", table: \(s).absent }
                sink: { type: sqlite, path: out/w.db, table: t }
              unreachable:
                source: { type: files, path: "nothing/*.csv", format: csv }
                sink: { type: postgres, url: "postgres://nobody:secret@127.0.0.1:1/db", table: t }
            """, in: dir)
        let result = try SluiceProcess.run(["doctor", "--json"], in: dir)
        #expect(result.status == 1)
        struct Report: Decodable {
            struct Check: Decodable { var pipeline: String; var component: String; var ok: Bool; var message: String; var fix: String? }
            var ok: Bool
            var checks: [Check]
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        #expect(!report.ok)
        let status = Dictionary(report.checks.map { ("\($0.pipeline)/\($0.component)", $0.ok) }, uniquingKeysWith: { a, _ in a })
        #expect(status == ["good/source postgres": true, "good/sink postgres": true, "missing_table/source postgres": false,
                           "missing_table/sink sqlite": true, "unreachable/source files": false, "unreachable/sink postgres": false])
        #expect(report.checks.filter { !$0.ok }.allSatisfy { $0.fix != nil })
        #expect(report.checks.first { $0.pipeline == "missing_table" }?.message.contains("does not exist") == true)
        #expect(!result.stdout.contains("secret"))
    }
}
