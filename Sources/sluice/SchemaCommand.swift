import ArgumentParser
import Foundation
import Sluice

struct SchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Show a pipeline's schema versions, or how the source differs from the latest one.",
        subcommands: [Diff.self, Versions.self]
    )

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare the latest recorded table schema with what the source presents now: added, removed and retyped columns, what backward/forward/full compatibility say, and the DDL a run would apply. Writes nothing."
        )
        @OptionGroup var project: ProjectOptions
        @Argument(help: "The pipeline.") var pipeline: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let config = try project.loadProject()
            let p = try selected(config, pipeline)[0]
            do {
                let diff = try await SchemaDiff.make(project: config, pipeline: p, store: try ProjectRunner(project: config).openStore())
                print(json ? diff.json : diff.text)
            } catch {
                Terminal.printError("sluice schema diff: \(config.masker.mask(SluiceError.wrap(error, kind: .source, pipeline: pipeline).description))")
                throw ExitCode(1)
            }
        }
    }

    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the versions of a pipeline's table schema, oldest first.")
        @OptionGroup var project: ProjectOptions
        @Argument(help: "The pipeline.") var pipeline: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let config = try project.loadProject()
            _ = try selected(config, pipeline)
            let versions = try ProjectRunner(project: config).openStore().schemaVersions(pipeline: pipeline)
            if json {
                let items = versions.map { v in
                    "{\"version\":\(v.version),\"run_id\":\(JSONText.quoted(v.runID)),\"created_at\":\(JSONText.quoted(v.createdAt)),\"columns\":["
                        + v.schema.fields.map { "{\"name\":\(JSONText.quoted($0.name)),\"type\":\(JSONText.quoted($0.type.description)),\"nullable\":\($0.nullable)}" }.joined(separator: ",") + "]}"
                }
                print("{\"versions\":[\(items.joined(separator: ","))]}")
                return
            }
            if versions.isEmpty { print("\(pipeline): no schema recorded yet (the pipeline has not loaded anything)") }
            var previous = Schema()
            for v in versions {
                print("version \(v.version)  \(v.createdAt)  run \(v.runID)")
                for line in SchemaChange(from: previous, to: v.schema).lines { print("  \(line)") }
                previous = v.schema
            }
        }
    }
}
