import ArgumentParser
import Foundation
import Sluice

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a project: sluice.yaml with a commented example pipeline and data/ with a sample file."
    )

    @Argument(help: "Directory to create the project in.") var directory = "."

    func run() async throws {
        let fm = FileManager.default
        let file = directory + "/sluice.yaml"
        guard !fm.fileExists(atPath: file) else {
            Terminal.printError("sluice init: \(file) already exists; nothing was changed")
            throw ExitCode(2)
        }
        try fm.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        try Self.projectFile.write(toFile: file, atomically: true, encoding: .utf8)
        try Self.sample.write(toFile: directory + "/data/orders_sample.csv", atomically: true, encoding: .utf8)
        print("created \(file) and \(directory)/data/orders_sample.csv\nnext: cd \(directory) && sluice run")
    }

    static let projectFile = """
        version: 1
        # Saved positions and run history (SQLite). Default: .sluice/state.db
        state: .sluice/state.db

        pipelines:
          orders:
            source:
              type: files
              path: data/orders_*.csv          # glob; .gz / .zst files are decompressed automatically
              format: csv
              incremental: new_files           # each file once; a changed file is read again
            schema:
              columns:
                order_id: { type: int64, primary_key: true }
                amount: { type: "decimal(12,2)" }
                created_at: { type: timestamp }
              evolution: evolve                # new columns are added to the table
            transforms:
              - add_fields: { _ingested_at: now(), _source: source_file() }
            on_error:
              action: quarantine               # bad rows go to .sluice/quarantine/orders/<run>.jsonl
            sink:
              type: sqlite
              path: warehouse.db
              table: orders
              mode: merge                      # upsert by primary key: re-runs never duplicate

        """

    static let sample = """
        order_id,customer_id,email,amount,status,created_at
        1,100,ana@example.com,19.99,paid,2024-03-01T10:00:00Z
        2,101,bo@example.com,5.00,new,2024-03-01T11:30:00Z
        3,100,ana@example.com,120.50,shipped,2024-03-02T09:15:00Z

        """
}
