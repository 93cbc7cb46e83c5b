import Foundation
import SluiceCore

extension ProfileReport {
    /// The `--json` document of `spec/cli.md`.
    public var json: String {
        func number(_ d: Double?) -> String { d.map { $0.isFinite ? Value.formatDouble($0) : "null" } ?? "null" }
        let items = columns.map { c -> String in
            let top = c.topValues().map { "{\"value\":\(JSONText.quoted($0.value)),\"count\":\($0.count)}" }.joined(separator: ",")
            let histogram = c.bins.map { b in
                "{\"bounds\":[\(b.bounds.map { bound(c, $0) }.joined(separator: ","))],\"counts\":[\(b.counts.map(String.init).joined(separator: ","))]}"
            } ?? "null"
            let lengths = c.lengthStats.map { "{\"min\":\($0.min),\"max\":\($0.max),\"mean\":\(number($0.mean))}" } ?? "null"
            return "{\"name\":\(JSONText.quoted(c.name)),\"type\":\(JSONText.quoted(c.type.description)),\"null_count\":\(c.nulls),"
                + "\"null_ratio\":\(number(c.nullRatio)),\"distinct_estimate\":\(c.distinctEstimate),"
                + "\"min\":\(c.minValue?.jsonText ?? "null"),\"max\":\(c.maxValue?.jsonText ?? "null"),"
                + "\"mean\":\(number(c.mean)),\"stddev\":\(number(c.stddev)),\"length\":\(lengths),"
                + "\"top_values\":[\(top)],\"histogram\":\(histogram)}"
        }
        return "{\"source\":\(JSONText.quoted(source)),\"rows\":\(rows),\"columns\":[\(items.joined(separator: ","))]}"
    }

    /// A histogram bound as JSON: a number, or ISO text for dates and timestamps.
    private func bound(_ c: ColumnProfile, _ b: Double) -> String {
        c.isTemporal ? JSONText.quoted(Temporal.formatTimestamp(Int64(b))) : Value.formatDouble(b)
    }

    /// The terminal table: one line per column.
    public var text: String {
        func fmt(_ d: Double?) -> String { d.map { String(format: abs($0) >= 1e6 || (abs($0) < 0.01 && $0 != 0) ? "%.4g" : "%.2f", $0) } ?? "" }
        func cut(_ s: String, _ n: Int) -> String { s.count > n ? String(s.prefix(n - 1)) + "…" : s }
        var rowsOut = [["column", "type", "null %", "distinct", "min", "max", "mean", "stddev", "top values"]]
        for c in columns {
            let top = c.topValues(3).map { "\(cut($0.value, 16)) (\($0.count))" }.joined(separator: ", ")
            rowsOut.append([c.name, c.type.description, String(format: "%.1f", 100 * c.nullRatio), "\(c.distinctEstimate)",
                            cut(c.minValue?.text ?? "", 24), cut(c.maxValue?.text ?? "", 24), fmt(c.mean), fmt(c.stddev), top])
        }
        let widths = rowsOut[0].indices.map { i in rowsOut.map { $0[i].count }.max() ?? 0 }
        var lines = rowsOut.map { r in r.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") }
        lines.insert(String(repeating: "-", count: lines[0].count), at: 1)
        lines.insert("\(source): \(rows) rows, \(columns.count) columns", at: 0)
        return lines.map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }.joined(separator: "\n")
    }

    /// A self-contained page (inline CSS and SVG, no script, no network): a card per column
    /// with its figures and a chart — the histogram for numbers and dates, the most frequent
    /// values otherwise.
    public var html: String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        func fmt(_ d: Double?) -> String { d.map { String(format: "%.4g", $0) } ?? "–" }
        var cards: [String] = []
        for (i, c) in columns.enumerated() {
            var facts = [("type", c.type.description), ("nulls", String(format: "%d (%.1f%%)", c.nulls, 100 * c.nullRatio)),
                         ("distinct ≈", "\(c.distinctEstimate)"), ("min", c.minValue?.text ?? "–"), ("max", c.maxValue?.text ?? "–")]
            if c.isNumeric { facts += [("mean", fmt(c.mean)), ("stddev", fmt(c.stddev))] }
            if let l = c.lengthStats { facts.append(("length", String(format: "%d – %d, mean %.1f", l.min, l.max, l.mean))) }
            let table = facts.map { "<tr><th>\(esc($0.0))</th><td>\(esc($0.1))</td></tr>" }.joined()
            cards.append("""
                <section class="card" id="col-\(i)"><h2>\(esc(c.name))</h2><table>\(table)</table>\(chart(c, esc: esc))</section>
                """)
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Profile of \(esc(source))</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:24px;background:#f6f7f9;color:#1d232b}
            h1{font-size:20px;margin:0 0 4px} .sub{color:#5b6672;margin-bottom:18px}
            .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:14px}
            .card{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:12px 14px}
            .card h2{font-size:15px;margin:0 0 8px;word-break:break-all}
            table{border-collapse:collapse;width:100%;margin-bottom:8px} th{text-align:left;color:#5b6672;font-weight:500;width:34%}
            td,th{padding:2px 4px;border-bottom:1px solid #f0f2f5;word-break:break-all}
            svg{width:100%;height:auto} .bar{fill:#3b82f6} .label{font-size:10px;fill:#5b6672}
            </style></head><body>
            <h1>Profile of \(esc(source))</h1><div class="sub">\(rows) rows · \(columns.count) columns · sluice profile</div>
            <div class="grid">\(cards.joined(separator: "\n"))</div>
            </body></html>
            """
    }

    private func chart(_ c: ColumnProfile, esc: (String) -> String) -> String {
        let top = c.topValues(8)
        // Numbers and dates: their histogram; text without values that repeat: its lengths.
        let histogram = c.bins.map { ($0, "histogram of \(c.name)") } ?? (top.isEmpty ? c.lengthBins.map { ($0, "lengths of \(c.name)") } : nil)
        if let (b, title) = histogram, !b.counts.isEmpty {
            // Vertical bars.
            let peak = Double(b.counts.max() ?? 1)
            let w = 300.0 / Double(b.counts.count)
            let bars = b.counts.enumerated().map { i, n in
                let h = peak > 0 ? 100 * Double(n) / peak : 0
                return String(format: "<rect class=\"bar\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"><title>%@ – %@: %d</title></rect>",
                              Double(i) * w, 110 - h, max(0.5, w - 1), h, esc(label(c, b.bounds[i])), esc(label(c, b.bounds[i + 1])), n)
            }.joined()
            return "<div class=\"sub\">\(esc(title))</div><svg viewBox=\"0 0 300 130\" role=\"img\" aria-label=\"\(esc(title))\">\(bars)"
                + "<text class=\"label\" x=\"0\" y=\"125\">\(esc(label(c, b.bounds.first!)))</text>"
                + "<text class=\"label\" x=\"300\" y=\"125\" text-anchor=\"end\">\(esc(label(c, b.bounds.last!)))</text></svg>"
        }
        guard let peak = top.first?.count, peak > 0 else { return "" }
        // Horizontal bars: the most frequent values.
        let rows = top.enumerated().map { i, t in
            let y = Double(i) * 16
            return String(format: "<text class=\"label\" x=\"0\" y=\"%.0f\">%@</text><rect class=\"bar\" x=\"110\" y=\"%.0f\" width=\"%.2f\" height=\"11\"><title>%d</title></rect>"
                          + "<text class=\"label\" x=\"%.2f\" y=\"%.0f\">%d</text>",
                          y + 10, esc(String(t.value.prefix(18))), y + 1, 150 * Double(t.count) / Double(peak), t.count,
                          114 + 150 * Double(t.count) / Double(peak), y + 10, t.count)
        }.joined()
        return "<div class=\"sub\">most frequent values</div><svg viewBox=\"0 0 300 \(top.count * 16 + 4)\" role=\"img\" aria-label=\"most frequent values of \(esc(c.name))\">\(rows)</svg>"
    }

    private func label(_ c: ColumnProfile, _ b: Double) -> String {
        c.isText ? String(format: "%.0f", b) : c.isTemporal ? String(Temporal.formatTimestamp(Int64(b)).prefix(10)) : String(format: "%.4g", b)
    }
}
