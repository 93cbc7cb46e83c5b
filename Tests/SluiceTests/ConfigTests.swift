import Foundation
import Sluice
import Testing

/// The project file reader on its own: positions, interpolation, defaults, cron.
@Suite struct ConfigTests {
    func problems(_ yaml: String, env: [String: String] = [:]) -> [String] {
        do {
            _ = try ConfigLoader.parse(yaml, file: "p.yaml", environment: env)
            return []
        } catch let e as ConfigErrors {
            return e.problems.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    static let base = """
        version: 1
        pipelines:
          a:
            source: { type: files, path: "x.csv" }
            sink: { type: sqlite, path: w.db, table: t }

        """

    @Test(arguments: [
        ("*/15 * * * *", true), ("0 6 * * mon-fri", true), ("5,35 0-23/2 1 jan,jul 0", true), ("0 0 * * 7", true),
        ("61 * * * *", false), ("* * * *", false), ("*/0 * * * *", false), ("0 5-1 * * *", false), ("0 0 * foo *", false),
    ])
    func cronSchedules(_ schedule: String, _ valid: Bool) {
        let found = problems(Self.base + "    schedule: \"\(schedule)\"\n")
        #expect(found.isEmpty == valid, "\(found)")
        if !valid { #expect(found.first?.hasPrefix("p.yaml:6:15: pipelines.a.schedule: ") == true, "\(found)") }
    }

    @Test func cronExpandsFields() throws {
        let cron = try CronExpression("*/20 9-17/4 * * sun,7")
        #expect(cron.minutes == [0, 20, 40])
        #expect(cron.hours == [9, 13, 17])
        #expect(cron.daysOfWeek == [0])
    }

    @Test func environmentDefaultsAndSecretsFromVariables() throws {
        let yaml = """
            version: 1
            pipelines:
              a:
                source: { type: files, path: "${DIR:-data}/*.csv" }
                sink: { type: sqlite, path: "${DB_PASSWORD}.db", table: t }
            """
        let config = try ConfigLoader.parse(yaml, file: "p.yaml", environment: ["DB_PASSWORD": "hunter2"])
        guard case .files(let source) = config.pipelines[0].source, case .sqlite(let sink) = config.pipelines[0].sink else {
            Issue.record("unexpected connector types")
            return
        }
        #expect(source.path == "data/*.csv")
        #expect(sink.path == "hunter2.db")
        #expect(config.masker.mask("opening hunter2.db") == "opening ***.db")
    }

    @Test func unknownTimeZoneAndMergeWithoutKey() {
        let found = problems("""
            version: 1
            pipelines:
              a:
                timezone: Mars/Olympus
                source: { type: files, path: "x.csv" }
                sink: { type: sqlite, path: w.db, table: t, mode: merge }
            """)
        #expect(found.contains { $0.contains("unknown time zone 'Mars/Olympus'") })
        #expect(found.contains { $0.contains("merge needs a primary key") })
    }

    @Test func parquetLayoutOfAFilesSink() throws {
        let yaml = """
            version: 1
            pipelines:
              a:
                source: { type: files, path: "x.csv" }
                sink: { type: files, path: lake, format: parquet, parquet: { row_group_size: 32MiB, page_size: 64KiB, dictionary_size: 0 } }
            """
        let config = try ConfigLoader.parse(yaml, file: "p.yaml", environment: [:])
        guard case .files(let sink) = config.pipelines[0].sink else {
            Issue.record("unexpected sink type")
            return
        }
        #expect(sink.parquet.rowGroupSize == 32 << 20)
        #expect(sink.parquet.pageSize == 64 << 10)
        #expect(sink.parquet.dictionarySize == 0)
        #expect(sink.parquet.maxDictionarySize == nil)

        let found = problems("""
            version: 1
            pipelines:
              a:
                source: { type: files, path: "x.csv" }
                sink: { type: files, path: lake, format: jsonl, parquet: { page_size: 10, rowgroup_size: 1MiB } }
            """)
        #expect(found.contains { $0.contains("sink.parquet: parquet options need format: parquet") }, "\(found)")
        #expect(found.contains { $0.contains("sink.parquet.page_size: must be at least 1024 bytes") }, "\(found)")
        #expect(found.contains { $0.contains("rowgroup_size") && $0.contains("row_group_size") }, "\(found)")
    }

    @Test func objectStorePathsAreRefusedNotTakenForFolders() {
        let found = problems("""
            version: 1
            pipelines:
              a:
                source: { type: files, path: "s3://raw/orders/*.csv" }
                sink: { type: files, path: "s3://lake/orders/", format: parquet }
            """)
        #expect(found.count == 2, "\(found)")
        #expect(found.allSatisfy { $0.contains("s3:// paths are not available in this version of sluice") }, "\(found)")
    }

    @Test func invalidYAMLIsPositioned() {
        let found = problems("version: 1\npipelines:\n  a: [unclosed\n")
        #expect(found.count == 1)
        #expect(found[0].hasPrefix("p.yaml:"))
        #expect(found[0].contains("invalid YAML"))
    }
}
