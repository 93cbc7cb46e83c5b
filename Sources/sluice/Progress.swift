import Foundation
import Sluice

/// The live progress line on a terminal (records, MB, records/s, ETA), or a log line every ten
/// seconds when stderr is not a terminal.
enum Progress {
    nonisolated(unsafe) static var lineShown = false

    static func clearLine() {
        if lineShown, Terminal.stderrIsTTY {
            Terminal.stderr("\r\u{1B}[2K")
            lineShown = false
        }
    }

    static func render(_ snapshots: [RunProgress.Snapshot]) -> String {
        snapshots.filter { !$0.finished }.map { s in
            let elapsed = max(Date().timeIntervalSince(s.started), 0.001)
            let rate = Double(s.records) / elapsed
            var text = "\(s.pipeline): \(s.records) records, \(String(format: "%.1f", Double(s.bytes) / 1e6)) MB, \(Int(rate)) rec/s"
            if let total = s.totalBytes, total > 0, s.bytes > 0 {
                let fraction = min(1, Double(s.bytes) / Double(total))
                let eta = elapsed / fraction - elapsed
                text += String(format: ", %.0f%%, ETA %.0fs", fraction * 100, eta)
            }
            return text + " [\(s.unitsDone)/\(s.unitsTotal) units]"
        }.joined(separator: " | ")
    }

    /// Shows progress until the task is cancelled.
    static func show(_ progress: RunProgress) async {
        let tty = Terminal.stderrIsTTY
        var lastLog = Date()
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(tty ? 250 : 1000))
            let line = render(progress.snapshots)
            guard !line.isEmpty else { continue }
            if tty {
                Terminal.stderr("\r\u{1B}[2K" + String(line.prefix(200)))
                lineShown = true
            } else if Date().timeIntervalSince(lastLog) >= 10 {
                Terminal.stderr("progress: " + line + "\n")
                lastLog = Date()
            }
        }
        clearLine()
    }
}
