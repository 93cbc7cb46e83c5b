import Foundation
import SluiceCore
import Yams

/// Loads `sluice.yaml`: YAML with positions → typed, validated `ProjectConfig`. All problems are
/// collected and thrown together as `ConfigErrors`, each as `FILE:LINE:COL: message`.
public enum ConfigLoader {
    public static func load(file: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ProjectConfig {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigErrors(problems: [ConfigProblem(file: file, line: 1, column: 1,
                                                        message: "cannot read the project file (create one with `sluice init`)")])
        }
        return try parse(String(decoding: data, as: UTF8.self), file: file, environment: environment)
    }

    public static func parse(_ text: String, file: String, environment: [String: String] = [:]) throws -> ProjectConfig {
        let context = ConfigContext(file: file, environment: environment)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigErrors(problems: [ConfigProblem(file: file, line: 1, column: 1, message: "the project file is empty")])
            }
            root = node
        } catch let error as YamlError {
            throw ConfigErrors(problems: [yamlProblem(error, file: file)])
        }
        let config = readProject(ConfigNode(node: root, path: "", context: context), file: file)
        if !context.problems.isEmpty || config == nil {
            let problems = context.problems.sorted { ($0.line, $0.column) < ($1.line, $1.column) }
            throw ConfigErrors(problems: problems.map {
                var p = $0
                p.message = SecretMasker(secrets: context.interpolator.secrets).mask(p.message)
                return p
            })
        }
        return config!
    }

    static func yamlProblem(_ error: YamlError, file: String) -> ConfigProblem {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return ConfigProblem(file: file, line: mark.line, column: mark.column, message: "invalid YAML: \(problem)")
        case .composer(_, let problem, let mark, _):
            return ConfigProblem(file: file, line: mark.line, column: mark.column, message: "invalid YAML: \(problem)")
        default:
            return ConfigProblem(file: file, line: 1, column: 1, message: "invalid YAML: \(error)")
        }
    }

    static func readProject(_ root: ConfigNode, file: String) -> ProjectConfig? {
        guard let top = root.object(allowed: ["version", "state", "defaults", "pipelines"]) else { return nil }
        if let v = top["version"], let n = v.int(), n != 1 { v.problem("version: only version 1 exists") }
        let baseDirectory = (file as NSString).deletingLastPathComponent
        var state = ".sluice/state.db"
        if let s = top["state"]?.string() {
            if s.hasPrefix("postgres://") || s.hasPrefix("postgresql://") {
                top["state"]?.problem("state: a PostgreSQL state store is not available in this version; use a SQLite file path")
            }
            state = s
        }
        var defaults = RetryConfig()
        var defaultBatch: (Int, Int) = (16_384, 4 << 20)
        if let d = top["defaults"], let obj = d.object(allowed: ["retry", "batch"]) {
            if let r = obj["retry"] { defaults = readRetry(r, base: defaults) }
            if let b = obj["batch"] { defaultBatch = readBatch(b, base: defaultBatch) }
        }
        var pipelines: [PipelineConfig] = []
        if let p = top.required("pipelines"), let pairs = p.pairs() {
            if pairs.isEmpty { p.problem("pipelines: no pipelines defined") }
            for (name, keyMark, node) in pairs {
                if name.isEmpty || !name.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }) {
                    root.context.problem("pipeline name '\(name)' must use only a-z, 0-9 and _", at: keyMark)
                }
                if let pipeline = readPipeline(node, name: name, retry: defaults, batch: defaultBatch) { pipelines.append(pipeline) }
            }
            // The graph is checked on what the file says, even for pipelines with other problems.
            let edges = pairs.map { pair in
                (pair.key, pair.value.pairs()?.first { $0.key == "depends_on" }.flatMap { $0.value.strings() } ?? [])
            }
            checkGraph(edges, pairs: pairs, context: root.context)
            checkFanOut(pipelines, pairs: pairs, context: root.context)
            checkWebhooks(pipelines, pairs: pairs, context: root.context)
        }
        return ProjectConfig(file: file, baseDirectory: baseDirectory.isEmpty ? "." : baseDirectory, state: state,
                             pipelines: pipelines, masker: SecretMasker(secrets: root.context.interpolator.secrets))
    }

    static func readRetry(_ node: ConfigNode, base: RetryConfig) -> RetryConfig {
        var r = base
        guard let o = node.object(allowed: ["attempts", "backoff", "initial", "max", "jitter"]) else { return r }
        if let v = o["attempts"]?.int(min: 1) { r.attempts = v }
        if let v = o["backoff"]?.string(), !["exponential", "constant"].contains(v) {
            o["backoff"]?.problem("\(node.path).backoff: unknown value '\(v)' (expected exponential or constant)")
        } else if o["backoff"]?.string() == "constant" { r.max = r.initial }
        if let v = o["initial"]?.duration() { r.initial = v }
        if let v = o["max"]?.duration() { r.max = v }
        if let v = o["jitter"]?.bool() { r.jitter = v }
        return r
    }

    static func readBatch(_ node: ConfigNode, base: (Int, Int)) -> (Int, Int) {
        var b = base
        guard let o = node.object(allowed: ["rows", "bytes"]) else { return b }
        if let v = o["rows"]?.int(min: 1) { b.0 = v }
        if let v = o["bytes"]?.size() { b.1 = Int(max(v, 1024)) }
        return b
    }

    static func readPipeline(_ node: ConfigNode, name: String, retry: RetryConfig, batch: (Int, Int)) -> PipelineConfig? {
        let keys = ["depends_on", "schedule", "timezone", "source", "schema", "transforms", "quality", "on_error", "sink", "retry", "batch"]
        guard let o = node.object(allowed: keys) else { return nil }
        if let s = o["schedule"], let text = s.string() {
            do { _ = try CronExpression(text) } catch { s.problem("\(s.path): \(error)") }
        }
        if let tz = o["timezone"], let name = tz.string(), TimeZone(identifier: name) == nil {
            tz.problem("\(tz.path): unknown time zone '\(name)' (use an IANA name such as Europe/Berlin or UTC)")
        }
        let source = o.required("source").flatMap { SourceReader.read($0) }
        let sink = o.required("sink").flatMap { SinkReader.read($0) }
        let schema = o["schema"].map { SchemaReader.read($0) } ?? SchemaConfig()
        let transforms = o["transforms"].map { TransformReader.read($0, declared: schema.declared) } ?? []
        let quality = o["quality"].map { QualityReader.read($0, declared: schema.declared) } ?? []
        let onError = o["on_error"].map { readOnError($0) } ?? OnErrorConfig()
        let pipelineRetry = o["retry"].map { readRetry($0, base: retry) } ?? retry
        let pipelineBatch = o["batch"].map { readBatch($0, base: batch) } ?? batch
        guard var source, let sink else { return nil }
        if case .files(let f) = sink, f.mode != .append {
            o["sink"]?.problem("\(name).sink.mode: files sinks only append (each source unit writes its own files)")
        }
        // A PostgreSQL table source brings its own primary key.
        let sourceHasKey = if case .postgres(let p) = source { p.table != nil || !p.primaryKey.isEmpty } else { false }
        if sink.mode == .merge, schema.declared.primaryKey.isEmpty, !sourceHasKey {
            o["sink"]?.problem("\(name).sink.mode: merge needs a primary key: mark a column with `primary_key: true` under schema.columns")
        }
        if case .postgres(var p) = source, p.mode == .cdc {
            p.slot = p.slot ?? "sluice_\(name)"
            p.emitsRows = sink.mode == .replicate
            source = .postgres(p)
            if sink.mode == .merge || sink.mode == .replace {
                o["sink"]?.problem("\(name).sink.mode: a CDC source's changes go to mode: replicate (apply them) or mode: append (keep the change log)")
            }
            if sink.mode == .replicate, p.tables.count > 1 {
                o["source"]?.problem("\(name).source.tables: mode: replicate applies one table per pipeline; give each table its own pipeline (and slot), or append the change log of several")
            }
            if !transforms.isEmpty, sink.mode == .replicate {
                o["transforms"]?.problem("\(name).transforms: a replica is applied as the source table is; transforms are for mode: append")
            }
        }
        if sink.mode == .replicate {
            if case .postgres(let p) = source, p.mode == .cdc {
                if case .files = sink { o["sink"]?.problem("\(name).sink.mode: replicate needs a table (sqlite or postgres sink); files sinks append the change log") }
            } else {
                o["sink"]?.problem("\(name).sink.mode: replicate applies change events and needs a CDC source (type: postgres, mode: cdc)")
            }
        }
        var pipeline = PipelineConfig(name: name, dependsOn: o["depends_on"]?.strings() ?? [], schedule: o["schedule"]?.string(),
                                      source: source, schema: schema, transforms: transforms, quality: quality, onError: onError, sink: sink,
                                      retry: pipelineRetry, batchRows: pipelineBatch.0, batchBytes: pipelineBatch.1)
        pipeline.timezone = o["timezone"]?.string()
        return pipeline
    }

    static func readOnError(_ node: ConfigNode) -> OnErrorConfig {
        var c = OnErrorConfig()
        guard let o = node.object(allowed: ["action", "max_ratio", "quarantine"]) else { return c }
        if let a = o["action"]?.oneOf(OnErrorAction.self, OnErrorAction.allCases) { c.action = a }
        if let r = o["max_ratio"], let v = r.double() {
            if (0...1).contains(v) { c.maxRatio = v } else { r.problem("\(r.path): must be between 0 and 1") }
        }
        if let q = o["quarantine"], let qo = q.object(allowed: ["type", "path"]) {
            if let t = qo["type"]?.string(), t != "files" { qo["type"]?.problem("\(q.path).type: only 'files' quarantine is available") }
            if let p = qo["path"]?.string() { c.quarantinePath = p }
        }
        return c
    }

    /// A `for_each` reads its parents from an upstream pipeline's table: that pipeline must run
    /// first and load into sqlite or postgres.
    static func checkFanOut(_ pipelines: [PipelineConfig], pairs: [(key: String, keyMark: Mark?, value: ConfigNode)], context: ConfigContext) {
        let marks = Dictionary(pairs.map { ($0.key, $0.keyMark) }, uniquingKeysWith: { a, _ in a })
        for p in pipelines {
            guard case .http(let h) = p.source, let each = h.forEach else { continue }
            let at = marks[p.name] ?? nil
            guard let parent = pipelines.first(where: { $0.name == each.pipeline }) else {
                context.problem("\(p.name).source.for_each.pipeline: unknown pipeline '\(each.pipeline)'"
                                + Spelling.didYouMean(each.pipeline, pipelines.map(\.name)), at: at)
                continue
            }
            if !p.dependsOn.contains(each.pipeline) {
                context.problem("\(p.name).source.for_each: add depends_on: [\(each.pipeline)] so the parents are loaded before they are read", at: at)
            }
            if case .files = parent.sink {
                context.problem("\(p.name).source.for_each: the parents are read from \(each.pipeline)'s sink, which must be a sqlite or postgres table", at: at)
            }
        }
    }

    /// Each webhook endpoint needs a path of its own, and its records arrive when they are pushed,
    /// not on a schedule.
    static func checkWebhooks(_ pipelines: [PipelineConfig], pairs: [(key: String, keyMark: Mark?, value: ConfigNode)], context: ConfigContext) {
        let marks = Dictionary(pairs.map { ($0.key, $0.keyMark) }, uniquingKeysWith: { a, _ in a })
        var paths: [String: String] = [:]
        for p in pipelines {
            guard case .webhook(let w) = p.source else { continue }
            let at = marks[p.name] ?? nil
            if let other = paths[w.path] {
                context.problem("\(p.name).source.path: \(w.path) is already the path of pipeline \(other)", at: at)
            }
            paths[w.path] = p.name
            if p.schedule != nil {
                context.problem("\(p.name).schedule: a webhook pipeline delivers records as they arrive under sluice serve; remove the schedule", at: at)
            }
        }
    }

    /// Unknown `depends_on` targets and cycles, reported at the pipeline that closes them.
    static func checkGraph(_ edges: [(String, [String])], pairs: [(key: String, keyMark: Mark?, value: ConfigNode)], context: ConfigContext) {
        let names = Set(edges.map(\.0))
        let marks = Dictionary(pairs.map { ($0.key, $0.keyMark) }, uniquingKeysWith: { a, _ in a })
        for (name, deps) in edges {
            for d in deps where !names.contains(d) {
                context.problem("\(name).depends_on: unknown pipeline '\(d)'" + Spelling.didYouMean(d, Array(names).sorted()), at: marks[name] ?? nil)
            }
        }
        if let cycle = PipelineGraph.findCycle(edges) {
            context.problem("depends_on forms a cycle: \(cycle.joined(separator: " → "))", at: marks[cycle[0]] ?? nil)
        }
    }
}
