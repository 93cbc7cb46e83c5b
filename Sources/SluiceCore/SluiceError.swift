/// An error a user reads: it names the pipeline, the component, what was being done, the cause and,
/// where one exists, the fix. Connectors classify failures (`retryable`); the runtime decides.
public struct SluiceError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case config, source, sink, parse, schema, state, connection, interrupted, `internal`
    }

    public var kind: Kind
    public var pipeline: String?
    /// `source files`, `sink sqlite`, `transform cast` …
    public var component: String?
    /// `data/orders.csv line 1873`, `warehouse.db table orders` …
    public var location: String?
    public var message: String
    public var fix: String?
    /// Whether trying the same operation again may succeed (connection refused, lock timeout, 503).
    public var retryable: Bool
    /// A machine-readable refinement of `kind` (`constraint` for a row a database refused).
    public var code: String?

    public var isConstraintViolation: Bool { code == "constraint" }

    public init(_ kind: Kind, _ message: String, pipeline: String? = nil, component: String? = nil,
                location: String? = nil, fix: String? = nil, retryable: Bool = false) {
        self.kind = kind
        self.message = message
        self.pipeline = pipeline
        self.component = component
        self.location = location
        self.fix = fix
        self.retryable = retryable
    }

    public var description: String {
        var parts: [String] = []
        if let pipeline { parts.append(pipeline) }
        if let component { parts.append(component) }
        if let location { parts.append(location) }
        parts.append(message)
        var s = parts.joined(separator: ": ")
        if let fix { s += " (fix: \(fix))" }
        return s
    }

    /// The same error with pipeline/component filled in where they are still unknown.
    public func within(pipeline: String? = nil, component: String? = nil) -> SluiceError {
        var e = self
        if e.pipeline == nil { e.pipeline = pipeline }
        if e.component == nil { e.component = component }
        return e
    }

    /// Wraps any error so that it reads as a `SluiceError`.
    public static func wrap(_ error: any Error, kind: Kind, pipeline: String? = nil, component: String? = nil) -> SluiceError {
        if let e = error as? SluiceError { return e.within(pipeline: pipeline, component: component) }
        return SluiceError(kind, "\(error)", pipeline: pipeline, component: component)
    }
}
