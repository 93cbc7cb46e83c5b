import Foundation
import SluiceCore
@testable import SluiceFormats
import Testing

/// `BatchTyper` on batches read through the real readers: inference, widening across batches,
/// declared types and the rejections they produce.
@Suite struct TypingTests {
    let files: ParserFixture.TempDirectory
    init() throws { files = try ParserFixture.TempDirectory() }

    // Reference instants, checked by hand: 2024-03-02 is day 19784 after 1970-01-01.
    static let march2 = Int32(19_784)
    static let march2At7UTC: Int64 = 1_709_362_800_000_000

    // MARK: Inference

    @Test func integersInferInt64() throws {
        let typed = try typeCSV("n,other\n1,a\n,b\n-2,c\n+3,d\n 42 ,e\n")
        #expect(typed.values("n") == [.int64(1), .null, .int64(-2), .int64(3), .int64(42)])
        #expect(typed.typer.inferred["n"] == .int64)
        #expect(typed.rejections.isEmpty)
    }

    @Test func int64LimitsAndOneBeyond() throws {
        let limits = try typeCSV("n\n9223372036854775807\n-9223372036854775808\n")
        #expect(limits.values("n") == [.int64(.max), .int64(.min)])
        let beyond = try typeCSV("n\n9223372036854775808\n1\n")
        #expect(beyond.typer.inferred["n"] == .double)
        #expect(beyond.values("n") == [.double(9_223_372_036_854_775_808), .double(1)])
    }

    @Test func integersMixedWithDecimalsInferDouble() throws {
        let typed = try typeCSV("x\n1\n2.5\n-0.125\n1e3\n.5\n")
        #expect(typed.typer.inferred["x"] == .double)
        #expect(typed.values("x") == [.double(1), .double(2.5), .double(-0.125), .double(1000), .double(0.5)])
    }

    @Test func booleansOnlyFromTrueAndFalseWords() throws {
        let typed = try typeCSV("b,flag,answer\ntrue,0,yes\nFALSE,1,no\nTrue,1,yes\n")
        #expect(typed.values("b") == [.bool(true), .bool(false), .bool(true)])
        #expect(typed.typer.inferred["flag"] == .int64)     // 0/1 flags stay numbers
        #expect(typed.typer.inferred["answer"] == .string)
    }

    @Test func nanAndInfinityWordsStayText() throws {
        let typed = try typeCSV("x\nNaN\ninf\n")
        #expect(typed.typer.inferred["x"] == .string)
        #expect(typed.values("x") == [.string("NaN"), .string("inf")])
    }

    @Test func isoDatesInferDate() throws {
        let typed = try typeCSV("d\n2024-03-02\n1970-01-01\n1969-12-31\n2024-02-29\n")
        #expect(typed.typer.inferred["d"] == .date)
        #expect(typed.values("d") == [.date(Self.march2), .date(0), .date(-1), .date(Self.march2 - 2)])
        #expect(Temporal.formatDate(-1) == "1969-12-31")
    }

    @Test func impossibleCalendarDateIsText() throws {
        let typed = try typeCSV("d\n2024-03-02\n2023-02-29\n")
        #expect(typed.typer.inferred["d"] == .string)
        #expect(typed.values("d") == [.string("2024-03-02"), .string("2023-02-29")])
    }

    @Test(arguments: [
        ("2024-03-02T07:00:00Z", march2At7UTC),
        ("2024-03-02T08:00:00+01:00", march2At7UTC),
        ("2024-03-02T08:00:00+0100", march2At7UTC),
        ("2024-03-02T02:00:00-05:00", march2At7UTC),
        ("2024-03-02 07:00:00", march2At7UTC),               // no offset: UTC
        ("2024-03-02T07:00Z", march2At7UTC),
        ("2024-03-02T07:00:00.5Z", march2At7UTC + 500_000),
        ("2024-03-02T07:00:00.123456Z", march2At7UTC + 123_456),
        ("2024-03-02T08:00:00.25+01:00", march2At7UTC + 250_000),
        ("1969-12-31T23:59:59Z", -1_000_000),
        ("1969-12-31T23:59:59.5Z", -500_000),
        ("1900-01-01T00:00:00Z", -2_208_988_800_000_000),
    ])
    func isoTimestampsInferTimestamp(_ text: String, _ micros: Int64) throws {
        let typed = try typeCSV("t\n\(text)\n")
        #expect(typed.typer.inferred["t"] == .timestamp)
        #expect(typed.values("t") == [.timestamp(micros)])
    }

    /// Nanosecond timestamps (Go, Java, Postgres exports) have 9 fractional digits; digits below a
    /// microsecond are dropped. Run in a child process: this input used to trap (`nd..<6` with nd > 6),
    /// which would take the whole test run down with it.
    @Test func moreThanSixFractionalDigitsAreTruncatedNotACrash() async {
        await #expect(processExitsWith: .success) {
            let value = TextParsing.withBytes("2024-03-02T07:00:00.123456789Z") { TextParsing.timestamp($0) }
            if value != TypingTests.march2At7UTC + 123_456 { exit(1) }
        }
    }

    @Test func offsetsNameTheSameInstant() throws {
        let typed = try typeCSV("t\n2024-03-02T08:00:00+01:00\n2024-03-02T07:00:00Z\n")
        let values = typed.values("t")
        #expect(values.count == 2)
        #expect(values.first == values.last)
        #expect(values.first.map { Temporal.formatTimestamp(Self.micros($0)) } == "2024-03-02T07:00:00Z")
    }

    @Test func timestampsBefore1970FormatBack() {
        #expect(Temporal.formatTimestamp(-1_000_000) == "1969-12-31T23:59:59Z")
        #expect(Temporal.formatTimestamp(-500_000) == "1969-12-31T23:59:59.500000Z")
        #expect(Temporal.formatTimestamp(-2_208_988_800_000_000) == "1900-01-01T00:00:00Z")
    }

    @Test func datesMixedWithTimestampsInferTimestamp() throws {
        let typed = try typeCSV("t\n2024-03-02\n2024-03-02T07:00:00Z\n")
        #expect(typed.typer.inferred["t"] == .timestamp)
        #expect(typed.values("t") == [.timestamp(Int64(Self.march2) * Temporal.microsPerDay), .timestamp(Self.march2At7UTC)])
    }

    // MARK: Widening across batches

    struct Widening: Sendable, CustomTestStringConvertible {
        var first: [String], later: [String]
        var firstType: DataType, widenedType: DataType
        var laterValues: [Value]
        var testDescription: String { "\(first) then \(later)" }
    }

    @Test(arguments: [
        Widening(first: ["1", "2"], later: ["3", "abc"], firstType: .int64, widenedType: .string,
                 laterValues: [.string("3"), .string("abc")]),
        Widening(first: ["1", "2"], later: ["3", "2.5"], firstType: .int64, widenedType: .double,
                 laterValues: [.double(3), .double(2.5)]),
        Widening(first: ["1.5"], later: ["x"], firstType: .double, widenedType: .string,
                 laterValues: [.string("x")]),
        Widening(first: ["true"], later: ["maybe"], firstType: .bool, widenedType: .string,
                 laterValues: [.string("maybe")]),
        Widening(first: ["2024-03-02"], later: ["2024-03-02T07:00:00Z"], firstType: .date, widenedType: .timestamp,
                 laterValues: [.timestamp(march2At7UTC)]),
    ])
    func laterBatchWidensAnInferredColumn(_ w: Widening) throws {
        // One typer across both files, as a files source uses one per run.
        let typer = BatchTyper(declared: Schema())
        let first = try typeCSV("v\n" + w.first.joined(separator: "\n") + "\n", typer: typer)
        #expect(first.batches.first?.schema["v"]?.type == w.firstType)
        #expect(typer.inferred["v"] == w.firstType)

        let later = try typeCSV("v\n" + w.later.joined(separator: "\n") + "\n", typer: typer)
        #expect(later.rejections.isEmpty)
        #expect(typer.inferred["v"] == w.widenedType)
        #expect(later.values("v") == w.laterValues)
    }

    @Test func widenedTypeSticksForLaterBatches() throws {
        let typer = BatchTyper(declared: Schema())
        _ = try typeCSV("v\n1\n", typer: typer)
        _ = try typeCSV("v\nabc\n", typer: typer)
        let third = try typeCSV("v\n7\n", typer: typer)
        #expect(typer.inferred["v"] == .string)
        #expect(third.values("v") == [.string("7")])
    }

    // MARK: Declared types

    @Test func declaredInt64RejectsTextWithFieldAndValue() throws {
        let typer = BatchTyper(declared: Schema([Field("qty", .int64)]))
        let typed = try typeCSV("id,qty\n1,5\n2,abc\n3,-7\n", typer: typer)
        #expect(typed.values("qty") == [.int64(5), .int64(-7)])
        #expect(typed.values("id") == [.int64(1), .int64(3)])
        let rejection = try #require(typed.rejections.first)
        #expect(typed.rejections.count == 1)
        #expect(rejection.reason == .schema)
        #expect(rejection.field == "qty")
        #expect(rejection.message == "value 'abc' is not a valid int64")
        #expect(rejection.origin == 3)
        #expect(rejection.record?.map(\.0) == ["id", "qty"])
        #expect(rejection.record?.map(\.1) == [.string("2"), .string("abc")])
    }

    @Test(arguments: [
        ("19.90", Value.decimal(1990, scale: 2)),
        ("19.9", .decimal(1990, scale: 2)),
        ("19.990", .decimal(1999, scale: 2)),       // trailing zeros lose nothing
        ("-0.5", .decimal(-50, scale: 2)),
        ("7", .decimal(700, scale: 2)),
        ("9999999999.99", .decimal(999_999_999_999, scale: 2)),
        ("19.999", nil),                            // a third decimal digit would be lost
        ("12345678901.00", nil),                    // 11 integer digits, precision allows 10
        ("1e3", nil),
        ("12.3.4", nil),
    ] as [(String, Value?)])
    func declaredDecimal(_ text: String, _ expected: Value?) throws {
        let typer = BatchTyper(declared: Schema([Field("price", .decimal(precision: 12, scale: 2))]))
        let typed = try typeCSV("id,price\n1,\(text)\n2,1.00\n", typer: typer)
        if let expected {
            #expect(typed.values("price") == [expected, .decimal(100, scale: 2)])
            #expect(typed.rejections.isEmpty)
        } else {
            #expect(typed.values("price") == [.decimal(100, scale: 2)])
            #expect(typed.rejections.map(\.field) == ["price"])
            #expect(typed.rejections.map(\.reason) == [.schema])
            #expect(typed.rejections.first?.message == "value '\(text)' is not a valid decimal(12,2)")
        }
    }

    @Test func declaredNonNullableColumnRejectsNulls() throws {
        let typer = BatchTyper(declared: Schema([Field("id", .int64, nullable: false)]))
        let typed = try typeCSV("id,name\n1,a\n,b\nNULL,c\n4,d\n", typer: typer)
        #expect(typed.values("id") == [.int64(1), .int64(4)])
        #expect(typed.values("name") == [.string("a"), .string("d")])
        #expect(typed.rejections.map(\.origin) == [3, 4])
        #expect(typed.rejections.allSatisfy {
            $0.reason == .schema && $0.field == "id" && $0.message == "id is null but declared nullable: false"
        })
    }

    @Test func declaredDateAcceptsATimestampAndFloorsBefore1970() throws {
        let typer = BatchTyper(declared: Schema([Field("d", .date)]))
        let typed = try typeCSV("d\n1969-12-31T23:00:00Z\n2024-03-02T07:00:00Z\n", typer: typer)
        #expect(typed.values("d") == [.date(-1), .date(Self.march2)])
    }

    @Test func declaredTimestampWithAFormat() throws {
        let typer = BatchTyper(declared: Schema([Field("when", .timestamp)]), formats: ["when": "%d/%m/%Y %H:%M"])
        let typed = try typeCSV("when\n02/03/2024 07:00\n31/12/1969 23:59\nnot a time\n", typer: typer)
        #expect(typed.values("when") == [.timestamp(Self.march2At7UTC), .timestamp(-60_000_000)])
        #expect(typed.rejections.map(\.origin) == [4])
    }

    @Test func declaredJSONColumnQuotesCSVText() throws {
        let typer = BatchTyper(declared: Schema([Field("j", .json)]))
        let typed = try typeCSV("j\n\"say \"\"hi\"\"\"\n", typer: typer)
        #expect(typed.values("j") == [.json(#""say \"hi\"""#)])
    }

    // MARK: JSON values

    @Test func jsonValuesKeepTheirJSONTypes() throws {
        let typed = try typeJSONL("""
            {"s":"123","n":123,"f":1.5,"b":true,"bs":"true","o":{"k":[1]},"t":"2024-03-02T07:00:00Z","neg":-4}
            {"s":"0042","n":-9,"f":2,"b":false,"bs":"false","o":[],"t":"2024-03-02T08:00:00+01:00","neg":0}

            """)
        #expect(typed.values("s") == [.string("123"), .string("0042")])    // a JSON string is never a number
        #expect(typed.values("n") == [.int64(123), .int64(-9)])
        #expect(typed.values("f") == [.double(1.5), .double(2)])
        #expect(typed.values("b") == [.bool(true), .bool(false)])
        #expect(typed.values("bs") == [.string("true"), .string("false")])
        #expect(typed.values("o") == [.json(#"{"k":[1]}"#), .json("[]")])
        #expect(typed.values("t") == [.timestamp(Self.march2At7UTC), .timestamp(Self.march2At7UTC)])
        #expect(typed.values("neg") == [.int64(-4), .int64(0)])
        #expect(typed.typer.inferred == ["s": .string, "n": .int64, "f": .double, "b": .bool, "bs": .string,
                                         "o": .json, "t": .timestamp, "neg": .int64])
    }

    @Test func jsonStringAndNumberInOneColumnIsString() throws {
        let typed = try typeJSONL("{\"v\":\"a\"}\n{\"v\":1}\n")
        #expect(typed.typer.inferred["v"] == .string)
        #expect(typed.values("v") == [.string("a"), .string("1")])
    }

    @Test func declaredTimestampFromEpochNumbers() throws {
        let typer = BatchTyper(declared: Schema([Field("t", .timestamp)]))
        // Seconds, milliseconds and microseconds, told apart by magnitude.
        let typed = try typeJSONL("{\"t\":1709362800}\n{\"t\":1709362800000}\n{\"t\":1709362800000000}\n{\"t\":-1.5}\n", typer: typer)
        #expect(typed.values("t") == [.timestamp(Self.march2At7UTC), .timestamp(Self.march2At7UTC),
                                      .timestamp(Self.march2At7UTC), .timestamp(-1_500_000)])
    }

    @Test func declaredDecimalFromJSONNumbers() throws {
        let typer = BatchTyper(declared: Schema([Field("p", .decimal(precision: 12, scale: 2))]))
        let typed = try typeJSONL("{\"p\":19.9}\n{\"p\":1.5e1}\n{\"p\":\"3.25\"}\n", typer: typer)
        #expect(typed.values("p") == [.decimal(1990, scale: 2), .decimal(1500, scale: 2), .decimal(325, scale: 2)])
    }
}

// MARK: - Helpers

extension TypingTests {
    /// Typed batches of one file, with the typer that produced them.
    struct Typed {
        var batches: [RecordBatch]
        var rejections: [Rejection]
        var typer: BatchTyper

        /// Every value of column `name`, across batches.
        func values(_ name: String) -> [Value] {
            batches.flatMap { batch in batch.rows.map { $0[name] } }
        }
    }

    func typeCSV(_ text: String, typer: BatchTyper = BatchTyper(declared: Schema())) throws -> Typed {
        Self.type(try files.readCSV(text), with: typer)
    }

    func typeJSONL(_ text: String, typer: BatchTyper = BatchTyper(declared: Schema())) throws -> Typed {
        Self.type(try files.readJSONL(text), with: typer)
    }

    static func type(_ parsed: ParserFixture.Parsed, with typer: BatchTyper) -> Typed {
        var typed = Typed(batches: [], rejections: [], typer: typer)
        for raw in parsed.batches {
            let (batch, rejected) = typer.type(raw)
            typed.batches.append(batch)
            typed.rejections += rejected
        }
        return typed
    }

    static func micros(_ value: Value) -> Int64 {
        if case .timestamp(let t) = value { return t }
        return .min
    }
}
