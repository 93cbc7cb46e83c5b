/// How one table schema differs from another, and whether a compatibility level allows it.
public struct SchemaChange: Sendable, Equatable {
    public var added: [Field] = []
    public var removed: [Field] = []
    /// Same name, other type: (before, after).
    public var retyped: [(Field, Field)] = []

    public init(from old: Schema, to new: Schema) {
        for f in new.fields {
            if let o = old[f.name] {
                if o.type != f.type { retyped.append((o, f)) }
            } else {
                added.append(f)
            }
        }
        removed = old.fields.filter { new[$0.name] == nil }
    }

    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && retyped.isEmpty }

    public static func == (a: SchemaChange, b: SchemaChange) -> Bool {
        a.added == b.added && a.removed == b.removed && a.retyped.map { [$0.0, $0.1] } == b.retyped.map { [$0.0, $0.1] }
    }

    /// One line per change: `+ score double`, `- note string`, `~ qty int64 → string`.
    public var lines: [String] {
        added.map { "+ \($0.name) \($0.type)\($0.nullable ? "" : " not null")" }
            + removed.map { "- \($0.name) \($0.type)" }
            + retyped.map { "~ \($0.0.name) \($0.0.type) → \($0.1.type)" }
    }

    /// What `level` refuses in this change (empty: allowed). `backward`: a reader of the new schema
    /// reads the old rows, so added columns must be nullable and types may only widen; `forward`:
    /// readers of the old schema read the new rows, so no column may change type or disappear
    /// unless it was nullable; `full`: both.
    public func violations(of level: String) -> [String] {
        var out: [String] = []
        let backward = level == "backward" || level == "full", forward = level == "forward" || level == "full"
        if backward {
            for f in added where !f.nullable { out.append("new column \(f.name) is not nullable, so rows written before it have no value (\(level))") }
            for (o, n) in retyped where !o.type.fits(in: n.type) { out.append("column \(o.name) narrows from \(o.type) to \(n.type) (\(level))") }
        }
        if forward {
            for (o, n) in retyped { out.append("column \(o.name) changes from \(o.type) to \(n.type), which readers of the earlier schema do not expect (\(level))") }
            for f in removed where !f.nullable { out.append("column \(f.name) disappears but was not nullable (\(level))") }
        }
        return out
    }
}
