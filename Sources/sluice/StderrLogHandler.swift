import Foundation
import Logging
import Sluice

/// Log lines on stderr: `2024-01-01T00:00:00Z info orders: Finished. read=10` or one JSON object per line.
struct StderrLogHandler: LogHandler {
    let label: String
    let json: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String, json: Bool) {
        self.label = label
        self.json = json
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, b in b } }
        let time = Temporal.formatTimestamp(Temporal.nowMicros() / 1000 * 1000)
        let line: String
        if json {
            var fields = ["\"ts\":\(JSONText.quoted(time))", "\"level\":\(JSONText.quoted(event.level.rawValue))",
                          "\"message\":\(JSONText.quoted(event.message.description))"]
            for (k, v) in all.sorted(by: { $0.key < $1.key }) { fields.append("\(JSONText.quoted(k)):\(JSONText.quoted(v.description))") }
            line = "{" + fields.joined(separator: ",") + "}\n"
        } else {
            let pipeline = all.removeValue(forKey: "pipeline").map { "\($0): " } ?? ""
            let rest = all.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = "\(time) \(event.level.rawValue) \(pipeline)\(event.message)\(rest.isEmpty ? "" : " " + rest)\n"
        }
        Progress.clearLine()
        FileHandle.standardError.write(Data(line.utf8))
    }
}
