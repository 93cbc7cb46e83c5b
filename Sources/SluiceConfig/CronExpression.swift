import Foundation

/// A 5-field cron expression (`minute hour day-of-month month day-of-week`), checked when the project
/// is validated so a typo fails before `sluice serve` would have to run it. Fields take `*`, values,
/// ranges `a-b`, steps `*/n` and `a-b/n`, and lists `a,b`; months and weekdays also take names.
public struct CronExpression: Sendable, Equatable {
    /// The allowed values of each field, expanded.
    public let minutes, hours, daysOfMonth, months, daysOfWeek: Set<Int>

    static let fields: [(name: String, range: ClosedRange<Int>, names: [String])] = [
        ("minute", 0...59, []),
        ("hour", 0...23, []),
        ("day of month", 1...31, []),
        ("month", 1...12, ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]),
        ("day of week", 0...7, ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]),
    ]

    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public init(_ text: String) throws {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard parts.count == 5 else {
            throw Problem(description: "'\(text)' has \(parts.count) fields; cron needs 5 (minute hour day-of-month month day-of-week)")
        }
        var sets: [Set<Int>] = []
        for (part, field) in zip(parts, Self.fields) { sets.append(try Self.expand(part, field)) }
        minutes = sets[0]
        hours = sets[1]
        daysOfMonth = sets[2]
        months = sets[3]
        daysOfWeek = Set(sets[4].map { $0 % 7 })   // 7 is Sunday too
    }

    /// Whether the expression fires in the minute that contains `date`, read in `timeZone`. As in
    /// cron, when both day fields are restricted a day matching either one fires.
    public func matches(_ date: Date, in timeZone: TimeZone = TimeZone(identifier: "UTC")!) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.minute, .hour, .day, .month, .weekday], from: date)
        guard let minute = c.minute, let hour = c.hour, let day = c.day, let month = c.month, let weekday = c.weekday else { return false }
        guard minutes.contains(minute), hours.contains(hour), months.contains(month) else { return false }
        let dayOfMonth = daysOfMonth.contains(day), dayOfWeek = daysOfWeek.contains(weekday - 1)
        let domRestricted = daysOfMonth.count < 31, dowRestricted = daysOfWeek.count < 7
        return domRestricted && dowRestricted ? dayOfMonth || dayOfWeek : dayOfMonth && dayOfWeek
    }

    static func expand(_ part: String, _ field: (name: String, range: ClosedRange<Int>, names: [String])) throws -> Set<Int> {
        var values = Set<Int>()
        for item in part.lowercased().split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = item.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw Problem(description: "\(field.name) '\(item)' has more than one '/'") }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0 else { throw Problem(description: "\(field.name) step '\(pieces[1])' must be a positive number") }
                step = s
            }
            let span: ClosedRange<Int>
            if pieces[0] == "*" {
                span = field.range
            } else {
                let bounds = pieces[0].split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count) else { throw Problem(description: "\(field.name) '\(pieces[0])' is not a value or a range") }
                let low = try value(bounds[0], field)
                let high = bounds.count == 2 ? try value(bounds[1], field) : (pieces.count == 2 ? field.range.upperBound : low)
                guard low <= high else { throw Problem(description: "\(field.name) range '\(pieces[0])' runs backwards") }
                span = low...high
            }
            values.formUnion(stride(from: span.lowerBound, through: span.upperBound, by: step))
        }
        return values
    }

    static func value(_ text: Substring, _ field: (name: String, range: ClosedRange<Int>, names: [String])) throws -> Int {
        if let i = field.names.firstIndex(of: String(text)) { return field.names.count == 12 ? i + 1 : i }
        guard let v = Int(text), field.range.contains(v) else {
            throw Problem(description: "\(field.name) '\(text)' is outside \(field.range.lowerBound)-\(field.range.upperBound)")
        }
        return v
    }
}
