import Foundation
import Logging
import SluiceConfig
import SluiceCore

/// Runs pipelines in `depends_on` order; independent pipelines run concurrently up to
/// `options.parallel`. A pipeline whose upstream failed is skipped.
public struct ProjectRunner: Sendable {
    public let project: ProjectConfig
    public let options: RunOptions
    public let cancel: CancellationFlag
    public let progress: RunProgress
    public let logger: Logger

    public init(project: ProjectConfig, options: RunOptions = RunOptions(), cancel: CancellationFlag = CancellationFlag(),
                progress: RunProgress = RunProgress(), logger: Logger = Logger(label: "sluice")) {
        self.project = project
        self.options = options
        self.cancel = cancel
        self.progress = progress
        self.logger = logger
    }

    public static func newRunID() -> String {
        let c = Temporal.components(Temporal.nowMicros())
        func p(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return "\(c.year)\(p(c.month))\(p(c.day))T\(p(c.hour))\(p(c.minute))\(p(c.second))Z-\(suffix)"
    }

    /// Runs the named pipelines (all when empty) and their upstream dependencies.
    public func run(_ names: [String] = []) async throws -> RunReport {
        let selected = names.isEmpty ? project.pipelines : PipelineGraph.closure(of: names, in: project.pipelines)
        let store = try StateStore(path: resolve(project.state))
        let runID = Self.newRunID()
        var results: [String: PipelineRunRecord] = [:]
        var pending = selected
        var running = Set<String>()
        await withTaskGroup(of: PipelineRunRecord.self) { group in
            func startReady() {
                while running.count < max(1, options.parallel) {
                    guard let index = pending.firstIndex(where: { p in
                        p.dependsOn.allSatisfy { dep in results[dep] != nil || !selected.contains { $0.name == dep } }
                    }) else { return }
                    let p = pending.remove(at: index)
                    let failedUpstream = p.dependsOn.filter { dep in results[dep].map { $0.status != .succeeded } ?? false }
                    if !failedUpstream.isEmpty || cancel.isCancelled {
                        var skipped = PipelineRunRecord(runID: runID, pipeline: p.name)
                        skipped.status = .skipped
                        skipped.error = cancel.isCancelled ? "not started: the run was interrupted" : "skipped: upstream \(failedUpstream.joined(separator: ", ")) did not succeed"
                        results[p.name] = skipped
                        continue
                    }
                    running.insert(p.name)
                    let runner = PipelineRunner(config: p, project: project, store: store, runID: runID, options: options,
                                                cancel: cancel, progress: progress, logger: logger)
                    group.addTask { await runner.run() }
                }
            }
            startReady()
            while let finished = await group.next() {
                running.remove(finished.pipeline)
                results[finished.pipeline] = finished
                startReady()
            }
            // Anything left waits on a pipeline that never ran.
            for p in pending where results[p.name] == nil {
                var skipped = PipelineRunRecord(runID: runID, pipeline: p.name)
                skipped.status = .skipped
                results[p.name] = skipped
            }
        }
        var report = RunReport(runID: runID, pipelines: selected.compactMap { results[$0.name] })
        report.interrupted = cancel.isCancelled
        return report
    }

    func resolve(_ path: String) -> String {
        path.hasPrefix("/") || project.baseDirectory == "." ? path : project.baseDirectory + "/" + path
    }

    /// The state store of the project, for `sluice state` and `sluice runs`.
    public func openStore() throws -> StateStore { try StateStore(path: resolve(project.state)) }
}

extension ProjectRunner {
    /// One run of one pipeline, without its dependencies, reading from `source` when given
    /// (`sluice serve` delivers a webhook spool it holds open itself).
    public func runPipeline(_ pipeline: PipelineConfig, source: (any Source)? = nil, store: StateStore) async -> PipelineRunRecord {
        let runner = PipelineRunner(config: pipeline, project: project, store: store, runID: Self.newRunID(), options: options,
                                    cancel: cancel, progress: progress, logger: logger)
        runner.sourceOverride = source
        return await runner.run()
    }
}
