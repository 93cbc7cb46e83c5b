#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Calendar arithmetic for dates (days since epoch) and timestamps (µs since epoch), proleptic
/// Gregorian, UTC. Civil-date conversions follow H. Hinnant's `days_from_civil` algorithm, which is
/// exact for every year and needs no Foundation calendar on the hot path.
public enum Temporal {
    public static let microsPerSecond: Int64 = 1_000_000
    public static let microsPerDay: Int64 = 86_400_000_000

    public static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func civil(days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Current time in µs since the epoch.
    public static func nowMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * microsPerSecond + Int64(ts.tv_nsec) / 1000
    }

    /// `2024-03-05`.
    public static func formatDate(_ days: Int32) -> String {
        let (y, m, d) = civil(days: Int(days))
        return pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2)
    }

    /// `2024-03-05T12:34:56Z`, or with `.ffffff` when there are sub-second digits.
    public static func formatTimestamp(_ micros: Int64) -> String {
        var days = micros / microsPerDay
        var rem = micros % microsPerDay
        if rem < 0 { rem += microsPerDay; days -= 1 }
        let secs = Int(rem / microsPerSecond), frac = Int(rem % microsPerSecond)
        var s = formatDate(Int32(days)) + "T" + pad(secs / 3600, 2) + ":" + pad(secs / 60 % 60, 2) + ":" + pad(secs % 60, 2)
        if frac != 0 { s += "." + pad(frac, 6) }
        return s + "Z"
    }

    /// Splits µs since epoch into civil fields (for path templates like `{created_at:%Y}`).
    public static func components(_ micros: Int64) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        var days = micros / microsPerDay
        var rem = micros % microsPerDay
        if rem < 0 { rem += microsPerDay; days -= 1 }
        let (y, m, d) = civil(days: Int(days))
        let secs = Int(rem / microsPerSecond)
        return (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
    }

    static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(abs(v))
        let body = s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        return v < 0 ? "-" + body : body
    }
}
