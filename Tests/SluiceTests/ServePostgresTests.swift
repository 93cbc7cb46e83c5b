import Foundation
import Sluice
import Testing

/// `sluice serve` with PostgreSQL: a sink outage under webhook load, and a CDC stream followed
/// by the server. Part of the serialized PostgreSQL suite (its outage test stops the server).
extension PostgresTests {
    /// The PostgreSQL sink refuses connections for 30 s under load: once the spool is full the
    /// server answers 503 with Retry-After, nothing acknowledged is lost, and delivery catches up.
    /// The outage is of this test's own database (connections refused, sessions terminated), as
    /// other suites share the server.
    @Test func sinkOutageFillsTheSpoolThenCatchesUp() throws {
        let base = try Self.serverURL()
        let database = "hook_outage_\(UInt32.random(in: 0...UInt32.max))"
        try Self.psql("CREATE DATABASE \(database)")
        let url = base.replacingOccurrences(of: #"/[^/?]+(\?|$)"#, with: "/\(database)$1", options: .regularExpression)
        let dir = try ServeTests.project(sink: "sink: { type: postgres, url: \"\(url)\", table: public.orders, mode: append }",
                                   source: "spool: { max_bytes: 1MiB }")
        let server = try ServeTests.Server(dir: dir)
        let total = 30_000
        let load = try ServeTests.Load(server, total: total, batch: 50, connections: 8)
        usleep(1_000_000)
        try Self.psql("""
            ALTER DATABASE \(database) ALLOW_CONNECTIONS false;
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '\(database)';
            """)
        usleep(30_000_000)
        let readyDuringOutage = try ServeTests.Server.get(server.port, "/readyz")
        try Self.psql("ALTER DATABASE \(database) ALLOW_CONNECTIONS true")
        let report = load.finish()
        #expect(readyDuringOutage.status == 503, "\(readyDuringOutage.body)")
        let stats = try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: Any]
        let statuses = stats?["statuses"] as? [String: Int] ?? [:]
        #expect((statuses["503"] ?? 0) > 0, "\(report)")
        #expect((stats?["retry_after"] as? Int ?? 0) > 0, "\(report)")
        #expect(statuses["gave_up"] == nil, "\(report)")
        #expect(server.stop() == 0, "\(server.log.suffix(2000))")
        #expect(try ServeTests.acknowledgedRecords(dir + "/acked.txt") == total)
        let counts = try shell("psql '\(url)' -X -q -A -t -c 'SELECT count(*), count(DISTINCT order_id) FROM public.orders'")
        #expect(counts.trimmingCharacters(in: .whitespacesAndNewlines) == "\(total)|\(total)", "\(report)")
        try? Self.psql("DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
    }

    /// Under `sluice serve` a CDC pipeline without a schedule is followed: changes made while the
    /// server runs reach the replica without a `sluice run`, and `/metrics` shows the slot's lag.
    @Test func serveFollowsAChangeStream() throws {
        let s = try Self.freshSchema("servecdc")
        defer { try? dropSlots(s) }
        try Self.createItems("\(s).items")
        var workload = Workload(seed: 0xCDC)
        try Self.psql(Self.script(&workload, table: "\(s).items", transactions: 20))
        let dir = try makeTemporaryDirectory("servecdc")
        try project("""
            pipelines:
              lite:
                source: { type: postgres, url: "$URL", mode: cdc, tables: [\(s).items], slot: \(s)_lite, poll_interval: 100ms }
                sink: { type: sqlite, path: replica.db, table: items, mode: replicate }
            """, in: dir)
        let server = try ServeTests.Server(dir: dir)
        func caughtUp() throws -> Bool {
            guard FileManager.default.fileExists(atPath: dir + "/replica.db") else { return false }
            let (pg, lite) = try Self.sqliteDifferences(source: "\(s).items", replicaFile: dir + "/replica.db")
            return pg == lite
        }
        func waitUntilCaughtUp() throws -> Bool {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if (try? caughtUp()) == true { return true }
                usleep(200_000)
            }
            return false
        }
        #expect(try waitUntilCaughtUp(), "snapshot never reached the replica: \(server.log.suffix(1500))")
        for _ in 0..<3 {
            try Self.psql(Self.script(&workload, table: "\(s).items", transactions: 30))
            #expect(try waitUntilCaughtUp(), "changes never reached the replica: \(server.log.suffix(1500))")
        }
        // The slot gauges refresh every 10 s: poll until the first refresh has landed (a loaded
        // machine can take longer than one period to run the first slot query).
        var metrics = ""
        let gaugeDeadline = Date().addingTimeInterval(40)
        repeat {
            usleep(1_000_000)
            metrics = try ServeTests.Server.get(server.port, "/metrics").body
        } while !metrics.contains("sluice_cdc_slot_lag_bytes{") && Date() < gaugeDeadline
        #expect(metrics.contains("sluice_cdc_slot_lag_bytes{pipeline=\"lite\",slot=\"\(s)_lite\"}"), "\(metrics.prefix(3000))")
        #expect(metrics.contains("sluice_cdc_wal_retained_bytes{pipeline=\"lite\""))
        #expect(metrics.contains("sluice_records_processed_total{pipeline=\"lite\",source=\"postgres\",status=\"written\"}"))
        #expect(server.stop() == 0, "\(server.log.suffix(1500))")
    }
}
