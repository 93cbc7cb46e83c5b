import ArgumentParser
import Foundation
import Sluice

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check every source and sink: reachability, credentials, privileges, tables and paths.",
        discussion: "Moves no data. Each problem comes with a one-line fix. Exit code 1 when there is a problem."
    )

    @OptionGroup var project: ProjectOptions
    @Flag(help: "Print JSON: {\"ok\": bool, \"checks\": [{pipeline, component, ok, message, fix}]}.") var json = false

    func run() async throws {
        let config = try project.loadProject()
        let findings = await Doctor.check(project: config)
        let ok = findings.allSatisfy(\.ok)
        if json {
            struct Report: Encodable { var ok: Bool; var checks: [Doctor.Finding] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(config.masker.mask(String(decoding: try encoder.encode(Report(ok: ok, checks: findings)), as: UTF8.self)))
        } else {
            for f in findings {
                print(config.masker.mask("\(f.ok ? "ok  " : "FAIL") \(f.pipeline): \(f.component): \(f.message)"))
                if let fix = f.fix, !f.ok { print(config.masker.mask("     fix: \(fix)")) }
            }
            print(ok ? "all \(findings.count) checks passed" : "\(findings.filter { !$0.ok }.count) of \(findings.count) checks failed")
        }
        if !ok { throw ExitCode(1) }
    }
}
