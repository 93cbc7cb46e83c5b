import Foundation
import Logging
import ServiceLifecycle
import SluiceConfig
import SluiceRuntime

/// Runs pipelines with a `schedule` (5-field cron, UTC unless `timezone:`) at the start of each
/// minute it names, with their upstream pipelines as `sluice run NAME` would. A pipeline still
/// running when its next time comes is not started twice; that time is skipped and logged.
final class Scheduler: Service, @unchecked Sendable {
    let project: ProjectConfig
    let logger: Logger
    private let jobs: [(pipeline: PipelineConfig, cron: CronExpression, zone: TimeZone)]
    private let lock = NSLock()
    private var running: Set<String> = []
    private let cancel = CancellationFlag()

    init(project: ProjectConfig, logger: Logger) {
        self.project = project
        self.logger = logger
        jobs = project.pipelines.compactMap { p in
            guard let text = p.schedule, let cron = try? CronExpression(text) else { return nil }
            return (p, cron, p.timezone.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!)
        }
    }

    var isEmpty: Bool { jobs.isEmpty }

    func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                var minute = Self.minute(of: Date())
                while !cancel.isCancelled {
                    // Wake at the next minute boundary (checking for shutdown meanwhile).
                    let next = minute.addingTimeInterval(60)
                    while Date() < next, !cancel.isCancelled { try? await Task.sleep(for: .milliseconds(min(500, max(1, next.timeIntervalSinceNow * 1000)))) }
                    if cancel.isCancelled { break }
                    minute = next
                    for job in jobs where job.cron.matches(minute, in: job.zone) {
                        let name = job.pipeline.name
                        let busy = lock.withLock { !running.insert(name).inserted }
                        if busy {
                            logger.warning("Scheduled run skipped: the previous one is still running.", metadata: ["pipeline": "\(name)"])
                            continue
                        }
                        group.addTask { await self.start(name) }
                    }
                }
                await group.waitForAll()
            }
        } onGracefulShutdown: { [cancel] in
            // Scheduled runs stop at their next batch, keeping what they committed.
            cancel.cancel()
        }
    }

    private func start(_ name: String) async {
        logger.info("Scheduled run starting.", metadata: ["pipeline": "\(name)"])
        let runner = ProjectRunner(project: project, cancel: cancel, logger: logger)
        do {
            let report = try await runner.run([name])
            logger.info("Scheduled run finished.", metadata: ["pipeline": "\(name)", "status": "\(report.status)"])
        } catch {
            logger.error("Scheduled run could not start.", metadata: ["pipeline": "\(name)", "error": "\(error)"])
        }
        _ = lock.withLock { running.remove(name) }
    }

    static func minute(of date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 60).rounded(.down) * 60)
    }
}
