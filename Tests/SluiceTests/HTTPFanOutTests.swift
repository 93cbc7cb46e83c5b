import Foundation
import Sluice
import Testing

/// `for_each` fan-out of the http source against the test API: per-parent units, partial runs
/// resumed with only the failed units, crash recovery, request templating.
@Suite struct HTTPFanOutTests {
    func project(_ body: String, in dir: String) throws {
        try write("version: 1\n" + body, to: dir + "/sluice.yaml")
    }

    func requests(_ api: TestAPI, matching: (String) -> Bool) throws -> [String: Int] {
        (try api.stats()["by_path"] as! [String: Int]).filter { matching($0.key) }
    }

    func config(_ api: TestAPI, playersMode: String = "merge", slow: Int = 0) -> String {
        """
        pipelines:
          teams:
            source: { type: http, url: "\(api.base)/teams", records_path: "" }
            schema: { columns: { team_id: { type: int64, primary_key: true } } }
            sink: { type: sqlite, path: out.db, table: teams, mode: merge }
          games:
            depends_on: [teams]
            source: { type: http, url: "\(api.base)/teams/{team_id}/games", records_path: data,
                      pagination: { type: page_number, total_pages_path: meta.total_pages },
                      for_each: { pipeline: teams, field: team_id, concurrency: 6 } }
            schema: { columns: { game_id: { type: int64, primary_key: true } } }
            retry: { attempts: 2, initial: 10ms, max: 20ms }
            sink: { type: sqlite, path: out.db, table: games, mode: merge }
          players:
            depends_on: [games]
            source: { type: http, url: "\(api.base)/games/{game_id}/players", params: { slow_ms: "\(slow)" }, records_path: data,
                      pagination: { type: page_number, total_pages_path: meta.total_pages },
                      for_each: { pipeline: games, field: game_id, concurrency: 8 } }
            schema: { columns: { player_id: { type: int64, primary_key: \(playersMode == "merge") } } }
            sink: { type: sqlite, path: out.db, table: players, mode: \(playersMode) }
        """
    }

    /// Seed 002: teams → games → players, one team's endpoint broken.
    @Test func oneFailingParentMakesThePartialRunThatTheNextRunFinishes() throws {
        let api = try TestAPI()
        let dir = try makeTemporaryDirectory("fanout")
        try project(config(api), in: dir)
        _ = try shell("curl -s -X POST \(api.base)/_config -d '{\"fail_teams\":[7]}'")

        let first = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(first.status == 1)
        let summary = try RunSummary.parse(first.stdout)
        #expect(summary.status == "partial", "\(first.stdout)")
        #expect(summary.pipeline("teams")?.status == "succeeded")
        #expect(summary.pipeline("games")?.status == "failed")
        #expect(summary.pipeline("games")?.error?.contains("1 of 30 units failed") == true, "\(summary.pipeline("games")?.error ?? "")")
        #expect(summary.pipeline("players")?.status == "skipped")
        #expect(first.stdout.contains("\"failed_units\":[{\"unit\":\"\(api.base)/teams/7/games\""), "the failed unit is named: \(first.stdout)")
        // Every other team's games landed; team 7's rows were rolled back.
        #expect(try query(dir + "/out.db", "SELECT count(*), count(DISTINCT team_id), sum(team_id = 7) FROM games") == [["174", "29", "0"]])
        // The breaker and retries: one request chain per unit, team 7 retried by the fetcher only (2 attempts).
        #expect(try requests(api) { $0 == "/teams/7/games" } == ["/teams/7/games": 2])
        let runs = try SluiceProcess.run(["runs", "games", "--json"], in: dir)
        #expect(runs.stdout.contains("\"failed_units\":[{\"unit\":\"\(api.base)/teams/7/games\""), "\(runs.stdout)")
        #expect(try SluiceProcess.run(["runs", "games"], in: dir).stdout.contains("failed unit \(api.base)/teams/7/games"))

        // The endpoint is fixed: the next run fetches team 7 only, then every game's players.
        _ = try shell("curl -s -X POST \(api.base)/_config -d '{\"fail_teams\":[]}'")
        _ = try shell("curl -s -X POST \(api.base)/_reset")
        let second = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try RunSummary.parse(second.stdout).pipeline("games")?.records_written == 6)
        #expect(try requests(api) { $0.hasSuffix("/games") } == ["/teams/7/games": 2], "only the failed team is fetched again")
        #expect(second.stderr.contains("skipped=29"), "\(second.stderr)")
        #expect(try query(dir + "/out.db", "SELECT count(*), count(DISTINCT team_id) FROM games") == [["180", "30"]])
        // 180 games × 8 players; the API leaves the game out of a player, the fan-out adds it.
        #expect(try query(dir + "/out.db", "SELECT count(*), count(DISTINCT player_id), count(DISTINCT game_id), sum(player_id / 10 != game_id) FROM players")
                == [["1440", "1440", "180", "0"]])

        // After a completed run the next one processes every unit again.
        _ = try shell("curl -s -X POST \(api.base)/_reset")
        let third = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(third.status == 0)
        #expect(try requests(api) { $0.hasSuffix("/games") }.count == 30, "a new round: all 30 teams")
        #expect(try query(dir + "/out.db", "SELECT count(*) FROM players") == [["1440"]])
    }

    @Test func killNineDuringAFanOutResumesWithoutRefetchingCommittedParents() throws {
        let api = try TestAPI()
        let dir = try makeTemporaryDirectory("fanout-crash")
        // Append (no key): a unit committed twice would show as duplicate rows.
        try project(config(api, playersMode: "append", slow: 40), in: dir)
        #expect(try SluiceProcess.run(["run", "games"], in: dir).status == 0)
        // Killed at random moments until one run gets to the end of the round by itself (a
        // completed round starts afresh next time, which in append mode would load it all again).
        var rng = SeededRandom(seed: 0xFA17)
        var killed = 0, finished = false
        while killed < 8, !finished {
            let process = try SluiceProcess.start(["run", "players"], in: dir)
            usleep(UInt32(Double.random(in: 0.25...0.8, using: &rng) * 1_000_000))
            if process.isRunning { kill(process.processIdentifier, SIGKILL); killed += 1 }
            process.waitUntilExit()
            // A run may have recorded its success just before the kill reached it.
            finished = try SluiceProcess.run(["runs", "players", "--json"], in: dir).stdout.contains("\"status\":\"succeeded\"")
        }
        #expect(killed >= 3)
        if !finished {
            _ = try shell("curl -s -X POST \(api.base)/_reset")
            let last = try SluiceProcess.run(["run", "players", "--json"], in: dir)
            #expect(last.status == 0, "\(last.stderr)")
            #expect(last.stderr.contains("Resuming the unfinished run"))
            // The last run read only what the killed runs had not committed.
            let refetched = try requests(api) { $0.hasPrefix("/games/") }.count
            #expect(refetched < 180, "\(refetched) games fetched again")
        }
        #expect(try query(dir + "/out.db", "SELECT count(*), count(DISTINCT player_id), count(DISTINCT game_id) FROM players") == [["1440", "1440", "180"]])
        // The run that finished the round wrote only what the killed runs had left.
        let history = try JSONSerialization.jsonObject(with: Data(try SluiceProcess.run(["runs", "players", "--json"], in: dir).stdout.utf8)) as! [String: Any]
        let finishing = (history["runs"] as! [[String: Any]]).first { $0["status"] as? String == "succeeded" }
        #expect((finishing?["records_written"] as? Int ?? 1440) < 1440, "\(history)")
    }

    @Test func parentValuesAndRunParametersFillTheRequest() throws {
        let api = try TestAPI(records: 500)
        let dir = try makeTemporaryDirectory("fanout-template")
        try project("""
            pipelines:
              teams:
                source: { type: http, url: "\(api.base)/teams?count=3", records_path: "" }
                sink: { type: sqlite, path: out.db, table: teams }
              echo:
                depends_on: [teams]
                source: { type: http, url: "\(api.base)/echo/teams/{team_id}", method: POST, records_path: "",
                          params: { day: "{{ ds }}", name: "{name}" }, headers: { X-Team: "t{team_id}" },
                          body: { team: "{team_id}", day: "{{ ds_nodash }}", note: "{\\"literal\\": true}" },
                          for_each: { pipeline: teams, fields: [team_id, name] } }
                sink: { type: sqlite, path: out.db, table: echo }
              zipped:
                source: { type: http, url: "\(api.base)/items?gzip=1&per_page=100", records_path: data,
                          pagination: { type: page_number, total_pages_path: meta.total_pages } }
                sink: { type: sqlite, path: out.db, table: zipped }
            """, in: dir)
        let run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let ds = String(ISO8601DateFormatter().string(from: Date()).prefix(10))
        let rows = try query(dir + "/out.db", "SELECT team_id, name, method, path, query, x_team, body FROM echo ORDER BY team_id")
        #expect(rows.count == 3)
        #expect(rows.first == ["1", "Team 1", "POST", "/echo/teams/1", "day=\(ds)&name=Team%201", "t1",
                               "{\"team\":\"1\",\"day\":\"\(ds.replacingOccurrences(of: "-", with: ""))\",\"note\":\"{\\\"literal\\\": true}\"}"],
                "\(rows.first ?? [])")
        #expect(try query(dir + "/out.db", "SELECT count(*), count(DISTINCT id) FROM zipped") == [["500", "500"]])
        #expect(try api.stats()["gzipped"] as! Int == 5, "every page came compressed")
    }

    @Test func validateExplainsFanOutMistakes() throws {
        let dir = try makeTemporaryDirectory("fanout-validate")
        try project("""
            pipelines:
              teams:
                source: { type: http, url: "http://127.0.0.1:1/teams" }
                sink: { type: files, path: lake, format: jsonl }
              no_parent:
                source: { type: http, url: "http://127.0.0.1:1/teams/{team_id}/games" }
                sink: { type: sqlite, path: out.db, table: a }
              wrong:
                source: { type: http, url: "http://127.0.0.1:1/teams/{team}?d={{ dss }}", for_each: { pipeline: teams, field: team_id } }
                sink: { type: sqlite, path: out.db, table: b }
            """, in: dir)
        let result = try SluiceProcess.run(["validate"], in: dir)
        #expect(result.status == 2)
        let text = result.stdout + result.stderr
        #expect(text.contains("{team_id} is filled from a parent record; add for_each"), "\(text)")
        #expect(text.contains("unknown run parameter {{ dss }}") && text.contains("did you mean 'ds'"), "\(text)")
        #expect(text.contains("{team} is not a for_each field"), "\(text)")
        #expect(text.contains("add depends_on: [teams]"), "\(text)")
        #expect(text.contains("must be a sqlite or postgres table"), "\(text)")
    }
}

/// examples/api-fanout runs as its comment says, against the test API.
@Suite struct APIFanOutExampleTests {
    @Test func theExampleLoadsTeamsGamesAndPlayers() throws {
        let api = try TestAPI()
        let dir = try makeTemporaryDirectory("example-api")
        try copyDirectory(SluiceProcess.packageRoot.appendingPathComponent("examples/api-fanout").path, to: dir)
        let run = try SluiceProcess.run(["run", "--json"], in: dir, environment: ["API_URL": api.base])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try query(dir + "/api.db", "SELECT (SELECT count(*) FROM teams), (SELECT count(*) FROM games), (SELECT count(*) FROM players)")
                == [["30", "180", "1440"]])
    }
}
