/// One named, typed column of a `Schema`.
public struct Field: Hashable, Sendable {
    public var name: String
    public var type: DataType
    public var nullable: Bool
    public var primaryKey: Bool

    public init(_ name: String, _ type: DataType, nullable: Bool = true, primaryKey: Bool = false) {
        self.name = name
        self.type = type
        self.nullable = nullable
        self.primaryKey = primaryKey
    }
}

/// An ordered list of fields with lookup by name.
public struct Schema: Hashable, Sendable, CustomStringConvertible {
    public private(set) var fields: [Field]
    private var indexByName: [String: Int]

    public init(_ fields: [Field] = []) {
        self.fields = []
        self.indexByName = [:]
        for field in fields { append(field) }
    }

    public var count: Int { fields.count }
    public var names: [String] { fields.map(\.name) }
    public var primaryKey: [String] { fields.filter(\.primaryKey).map(\.name) }

    public func index(of name: String) -> Int? { indexByName[name] }
    public subscript(name: String) -> Field? { indexByName[name].map { fields[$0] } }
    public subscript(index: Int) -> Field { fields[index] }

    /// Appends a field, or replaces the field of the same name.
    public mutating func append(_ field: Field) {
        if let i = indexByName[field.name] {
            fields[i] = field
        } else {
            indexByName[field.name] = fields.count
            fields.append(field)
        }
    }

    /// The union of two schemas: fields of `self` first (types widened where `other` disagrees),
    /// then fields only `other` has.
    public func merged(with other: Schema) -> Schema {
        var result = self
        for field in other.fields {
            if let i = result.index(of: field.name) {
                result.fields[i].type = result.fields[i].type.widened(with: field.type)
                result.fields[i].nullable = result.fields[i].nullable || field.nullable
            } else {
                result.append(field)
            }
        }
        return result
    }

    public var description: String {
        fields.map { "\($0.name) \($0.type)\($0.primaryKey ? " pk" : "")\($0.nullable ? "" : " not null")" }
            .joined(separator: ", ")
    }

    public static func == (lhs: Schema, rhs: Schema) -> Bool { lhs.fields == rhs.fields }
    public func hash(into hasher: inout Hasher) { hasher.combine(fields) }
}
