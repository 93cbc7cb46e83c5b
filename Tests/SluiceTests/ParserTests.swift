import Foundation
import SluiceCore
@testable import SluiceFormats
import Testing

/// Parser tests: every input is written to a real file and read back through `openByteReader` and
/// the format readers, so buffering, refills and decompression are exercised the way a pipeline
/// uses them. Assertions are on exact parsed values, line numbers and rejection messages.
@Suite struct ParserTests {
    typealias Cell = ParserFixture.Cell
}

// MARK: - CSV

extension ParserTests {
    @Suite struct CSV {
        let files: ParserFixture.TempDirectory
        init() throws { files = try ParserFixture.TempDirectory() }

        @Test func quotedFieldsKeepDelimitersDoubledQuotesAndNewlines() throws {
            let parsed = try files.readCSV(#"""
                id,text,n
                1,"a, b",x
                2,"say ""hi""",y
                3,"line1
                line2
                line3",z
                4,plain,w

                """#)
            #expect(parsed.header == ["id", "text", "n"])
            #expect(parsed.rows == [
                [.text("1"), .text("a, b"), .text("x")],
                [.text("2"), .text("say \"hi\""), .text("y")],
                [.text("3"), .text("line1\nline2\nline3"), .text("z")],
                [.text("4"), .text("plain"), .text("w")],
            ])
            // The record after the three-line field starts on line 7, not line 5.
            #expect(parsed.origins == [2, 3, 4, 7])
            #expect(parsed.rejections.isEmpty)
        }

        @Test(arguments: ["\n", "\r\n", "\r"])
        func lineEndings(_ eol: String) throws {
            let parsed = try files.readCSV(["a,b", "1,\"x\"", "\"y\",2", "3,4"].joined(separator: eol) + eol)
            #expect(parsed.header == ["a", "b"])
            #expect(parsed.rows == [[.text("1"), .text("x")], [.text("y"), .text("2")], [.text("3"), .text("4")]])
            #expect(parsed.origins == [2, 3, 4])
        }

        @Test func embeddedCRLFInsideAQuotedFieldIsKeptAndCountedAsOneLine() throws {
            let parsed = try files.readCSV("a,b\r\n1,\"x\r\ny\"\r\n2,z\r\n")
            #expect(parsed.rows == [[.text("1"), .text("x\r\ny")], [.text("2"), .text("z")]])
            #expect(parsed.origins == [2, 4])
        }

        @Test func utf8ByteOrderMarkIsNotPartOfTheFirstColumnName() throws {
            let parsed = try files.readCSV(bytes: [0xEF, 0xBB, 0xBF] + Array("id,name\n1,a\n".utf8))
            #expect(parsed.header == ["id", "name"])
            #expect(parsed.header.first?.unicodeScalars.first == "i")
            #expect(parsed.rows == [[.text("1"), .text("a")]])
            #expect(parsed.origins == [2])
        }

        @Test(arguments: [UInt8(ascii: ";"), UInt8(ascii: "\t"), UInt8(ascii: "|")])
        func customDelimiter(_ delimiter: UInt8) throws {
            let d = String(UnicodeScalar(delimiter))
            var options = CSVOptions()
            options.delimiter = delimiter
            // A comma is ordinary text once it is not the delimiter; the delimiter itself needs quotes.
            let text = ["id\(d)name\(d)note", "1\(d)a,b\(d)\"x\(d)y\"", "2\(d)\(d)z"].joined(separator: "\n") + "\n"
            let parsed = try files.readCSV(text, options: options)
            #expect(parsed.header == ["id", "name", "note"])
            #expect(parsed.rows == [[.text("1"), .text("a,b"), .text("x\(d)y")], [.text("2"), .null, .text("z")]])
        }

        @Test func customQuoteCharacter() throws {
            var options = CSVOptions()
            options.quote = UInt8(ascii: "'")
            let parsed = try files.readCSV("id,text,other\n1,'it''s, fine',\"x\"\n", options: options)
            // Double quotes are plain text when the quote character is a single quote.
            #expect(parsed.rows == [[.text("1"), .text("it's, fine"), .text("\"x\"")]])
        }

        @Test func defaultNullValues() throws {
            let parsed = try files.readCSV("""
                a,b,c,d,e
                ,"",NULL,null,"NULL"

                """)
            // Unquoted empty, NULL and null are null; a quoted value never is.
            #expect(parsed.rows == [[.null, .text(""), .null, .null, .text("NULL")]])
        }

        @Test func configuredNullValuesReplaceTheDefaults() throws {
            var options = CSVOptions()
            options.nullValues = ["NA"]
            let parsed = try files.readCSV("a,b,c,d\nNA,,NULL,\"NA\"\n", options: options)
            #expect(parsed.rows == [[.null, .text(""), .text("NULL"), .text("NA")]])
        }

        @Test func raggedRowsAreRejectedWithTheirLineAndNeighboursStillParse() throws {
            let parsed = try files.readCSV("""
                a,b,c
                1,2,3
                4,5
                6,7,8,9
                10,11,12

                """)
            #expect(parsed.rows == [[.text("1"), .text("2"), .text("3")], [.text("10"), .text("11"), .text("12")]])
            #expect(parsed.origins == [2, 5])
            #expect(parsed.rejections.map(\.message) == ["expected 3 fields, found 2", "expected 3 fields, found 4"])
            #expect(parsed.rejections.map(\.origin) == [3, 4])
            #expect(parsed.rejections.map(\.raw) == ["4,5", "6,7,8,9"])
            #expect(parsed.rejections.allSatisfy { $0.reason == .parse })
        }

        @Test(arguments: ["\n", "\r\n", "\r"])
        func textAfterAClosingQuoteRejectsOnlyThatRecord(_ eol: String) throws {
            let parsed = try files.readCSV(["a,b,c", "1,2,3", "4,\"x\"y,6", "7,8,9"].joined(separator: eol) + eol)
            #expect(parsed.rows == [[.text("1"), .text("2"), .text("3")], [.text("7"), .text("8"), .text("9")]])
            #expect(parsed.origins == [2, 4])
            #expect(parsed.rejections.count == 1)
            #expect(parsed.rejections.first?.message.contains("after a closing quote") == true)
            #expect(parsed.rejections.first?.origin == 3)
            #expect(parsed.rejections.first?.raw == "4,\"x\"y,6")
        }

        @Test func unterminatedQuoteAtEndOfFileIsARejectionNotAHang() throws {
            let path = try files.write("a,b\n1,2\n3,\"never closed\n4,5\n")
            let outcome = try #require(ParserFixture.withDeadline { try ParserFixture.readCSV(path: path) },
                                       "the CSV reader did not finish")
            let parsed = try outcome.get()
            #expect(parsed.rows == [[.text("1"), .text("2")]])
            #expect(parsed.rejections.map(\.message) == ["unterminated quoted field at end of file"])
            #expect(parsed.rejections.first?.origin == 3)
        }

        @Test func unbalancedQuoteInALargeFileFailsOnceTheRecordLimitIsReached() throws {
            var options = CSVOptions()
            options.maxRecordBytes = 100_000
            let body = String(repeating: "1,filler text\n", count: 200_000)
            let path = try files.write("a,b\n1,\"oops\n" + body)
            let error = #expect(throws: SluiceError.self) { try ParserFixture.readCSV(path: path, options: options) }
            #expect(error?.message.contains("record longer than 100000 bytes") == true)
            #expect(error?.location == "\(path) line 2")
        }

        @Test func blankLinesAreSkippedButStillCounted() throws {
            let parsed = try files.readCSV("a,b\n\n1,2\n\r\n\r\n3,4\n\n\n")
            #expect(parsed.rows == [[.text("1"), .text("2")], [.text("3"), .text("4")]])
            #expect(parsed.origins == [3, 6])
            #expect(parsed.rejections.isEmpty)
        }

        /// The first read of a file returns only the 4 bytes peeked for compression detection, so
        /// leading blank lines easily cross a read boundary.
        @Test(arguments: 0...6)
        func blankLinesBeforeTheHeaderAreSkipped(_ blankLines: Int) throws {
            let parsed = try files.readCSV(String(repeating: "\n", count: blankLines) + "id,name\n1,a\n")
            #expect(parsed.header == ["id", "name"])
            #expect(parsed.rows == [[.text("1"), .text("a")]])
            #expect(parsed.origins == [blankLines + 2])
            #expect(parsed.rejections.isEmpty)
        }

        /// A blank CRLF line is one line wherever the reads happen to split it. Header lengths 1–6 move
        /// the blank line's CR across the boundary after the first 4 bytes read.
        @Test(arguments: 1...6)
        func blankCRLFLineSplitAcrossReadsCountsAsOneLine(_ headerLength: Int) throws {
            let parsed = try files.readCSV(String(repeating: "h", count: headerLength) + "\n\r\n1\n2\n")
            #expect(parsed.rows == [[.text("1")], [.text("2")]])
            #expect(parsed.origins == [3, 4])
        }

        @Test func lastRecordWithoutTrailingNewline() throws {
            let plain = try files.readCSV("a,b\n1,2\n3,4")
            #expect(plain.rows == [[.text("1"), .text("2")], [.text("3"), .text("4")]])
            #expect(plain.origins == [2, 3])
            let quoted = try files.readCSV("a,b\n1,\"two\"")
            #expect(quoted.rows == [[.text("1"), .text("two")]])
        }

        @Test(arguments: ["a,b,c\n", "a,b,c", "a,b,c\r\n\r\n"])
        func headerOnlyFileHasNoRows(_ text: String) throws {
            let path = try files.write(text)
            let reader = try CSVReader(reader: openByteReader(path: path), options: CSVOptions(), location: path)
            #expect(reader.header == ["a", "b", "c"])
            #expect(try reader.next(maxRows: 100, maxBytes: 1 << 20) == nil)
        }

        @Test func emptyFileYieldsNoBatch() throws {
            let path = try files.write("")
            let reader = try CSVReader(reader: openByteReader(path: path), options: CSVOptions(), location: path)
            #expect(try reader.next(maxRows: 100, maxBytes: 1 << 20) == nil)
            #expect(try reader.next(maxRows: 100, maxBytes: 1 << 20) == nil)
        }

        @Test func blankAndDuplicateHeaderNamesGetUniqueNames() throws {
            let parsed = try files.readCSV(" a ,,a,a\n1,2,3,4\n")
            #expect(parsed.header == ["a", "column_2", "a_2", "a_3"])
        }

        @Test func withoutAHeaderColumnsAreNumberedAndTheFirstRecordIsData() throws {
            var options = CSVOptions()
            options.header = false
            let parsed = try files.readCSV("1,2\n3,4\n", options: options)
            #expect(parsed.names == ["column_1", "column_2"])
            #expect(parsed.rows == [[.text("1"), .text("2")], [.text("3"), .text("4")]])
            #expect(parsed.origins == [1, 2])
        }

        @Test func batchesRespectMaxRowsAndKeepLineNumbers() throws {
            let path = try files.write("n\n1\n2\n3\n4\n5\n")
            let parsed = try ParserFixture.readCSV(path: path, maxRows: 2)
            #expect(parsed.batches.map(\.rowCount) == [2, 2, 1])
            #expect(parsed.origins == [2, 3, 4, 5, 6])
        }

        /// 10 MB in one field: the buffer must grow past the 1 MiB read size without losing bytes.
        @Test(arguments: [false, true])
        func tenMegabyteField(quoted: Bool) throws {
            let expected: String
            let written: String
            if quoted {
                let chunk = "say \"hi\",\n"                           // 10 bytes unescaped
                expected = String(repeating: chunk, count: 1_000_000)
                written = "\"" + String(repeating: "say \"\"hi\"\",\n", count: 1_000_000) + "\""
            } else {
                expected = String(repeating: "0123456789", count: 1_000_000)
                written = expected
            }
            let parsed = try files.readCSV("id,blob,tail\n1,\(written),end\n2,small,end\n")
            #expect(parsed.rowCount == 2)
            let blob = parsed.column("blob")
            let intact = blob.first == .text(expected)   // compared outside #expect: a failure must not print 10 MB
            #expect(intact, "the 10 MB field changed")
            #expect(parsed.column("tail") == [.text("end"), .text("end")])
            #expect(blob.last == .text("small"))
            // Every embedded newline of the quoted field is a line.
            #expect(parsed.origins == [2, quoted ? 1_000_003 : 3])
        }

        @Test func headerWithOneHundredThousandColumns() throws {
            let count = 100_000
            let header = (0..<count).map { "c\($0)" }.joined(separator: ",")
            let row = (0..<count).map(String.init).joined(separator: ",")
            let parsed = try files.readCSV(header + "\n" + row + "\n")
            #expect(parsed.header.count == count)
            #expect(parsed.header.first == "c0")
            #expect(parsed.header.last == "c99999")
            #expect(parsed.rowCount == 1)
            #expect(parsed.batches.first?.columns.last?.text(at: 0) == "99999")

            let typer = BatchTyper(declared: Schema())
            let (typed, rejected) = typer.type(try #require(parsed.batches.first))
            #expect(rejected.isEmpty)
            #expect(typed.schema.count == count)
            #expect(typed.row(0)["c0"] == .int64(0))
            #expect(typed.row(0)["c99999"] == .int64(99_999))
        }

        @Test func invalidUTF8InAStringColumnRejectsOnlyThatRow() throws {
            let bytes = Array("id,name\n1,ok\n2,caf".utf8) + [0xE9]            // Latin-1 é
                + Array("\n3,fine\n4,over".utf8) + [0xC0, 0xAF]                  // overlong "/"
                + Array("\n5,naïve\n".utf8)
            let parsed = try files.readCSV(bytes: bytes)
            #expect(parsed.rowCount == 5)
            let typer = BatchTyper(declared: Schema())
            let (typed, rejected) = typer.type(try #require(parsed.batches.first))
            #expect(typed.rows.map { $0["id"] } == [.int64(1), .int64(3), .int64(5)])
            #expect(typed.rows.map { $0["name"] } == [.string("ok"), .string("fine"), .string("naïve")])
            #expect(rejected.map(\.origin) == [3, 5])
            #expect(rejected.allSatisfy { $0.reason == .schema && $0.field == "name" && $0.message.contains("UTF-8") })
            #expect(typer.inferred["name"] == .string)
        }
    }
}

// MARK: - Compression

extension ParserTests {
    @Suite struct Compressed {
        let files: ParserFixture.TempDirectory
        init() throws { files = try ParserFixture.TempDirectory() }

        /// About 2.7 MB of CSV with random hex, quoting and embedded newlines, so the compressed file
        /// is bigger than one 1 MiB input read.
        func sampleCSV() -> String {
            var random = SeededRandom(seed: 42)
            var text = "id,hex,quoted,n\n"
            for i in 0..<40_000 {
                let hex = (0..<4).map { _ in String(random.next(), radix: 16) }.joined()
                let quoted = i % 7 == 0 ? "\"multi\nline, \"\"\(i)\"\"\"" : "\"q\(i)\""
                text += "\(i),\(hex),\(quoted),\(Int64(bitPattern: random.next()) % 1000)\n"
            }
            return text
        }

        @Test(arguments: [Compression.gzip, .zstd])
        func compressedFileParsesIdenticallyToPlain(_ compression: Compression) throws {
            let plainPath = try files.write(sampleCSV(), named: "sample.csv")
            let compressedPath = try files.compress(plainPath, with: compression)
            #expect(try Compression.detect(Array(Data(contentsOf: URL(fileURLWithPath: compressedPath)).prefix(4))) == compression)
            #expect(try (FileManager.default.attributesOfItem(atPath: compressedPath)[.size] as? Int ?? 0) > 1 << 20)

            let plain = try ParserFixture.readCSV(path: plainPath, maxRows: 5_000)
            let decompressed = try ParserFixture.readCSV(path: compressedPath, maxRows: 5_000)
            #expect(plain.rowCount == 40_000)
            #expect(decompressed.header == plain.header)
            #expect(decompressed.rowCount == plain.rowCount)
            #expect(decompressed.origins == plain.origins)
            let same = decompressed.rows == plain.rows   // outside #expect: a failure would print 40,000 rows
            #expect(same, "decompressed rows differ from the plain file's")
            #expect(decompressed.rejections.isEmpty)
        }

        @Test(arguments: [Compression.gzip, .zstd])
        func truncatedCompressedFileIsAnError(_ compression: Compression) throws {
            let plainPath = try files.write(sampleCSV(), named: "sample.csv")
            let compressedPath = try files.compress(plainPath, with: compression)
            let full = try Data(contentsOf: URL(fileURLWithPath: compressedPath))
            try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: compressedPath))

            let outcome = try #require(ParserFixture.withDeadline { try ParserFixture.readCSV(path: compressedPath) },
                                       "reading a truncated \(compression) file did not finish")
            #expect(throws: SluiceError.self) { try outcome.get() }
            guard case .failure(let failure) = outcome, let error = failure as? SluiceError else { return }
            #expect(error.message.contains("truncated") || error.message.contains("corrupt"), "\(error)")
            #expect(error.location == compressedPath)
        }

        @Test(arguments: [Compression.gzip, .zstd])
        func corruptCompressedFileIsAnError(_ compression: Compression) throws {
            let plainPath = try files.write(sampleCSV(), named: "sample.csv")
            let compressedPath = try files.compress(plainPath, with: compression)
            var bytes = try Data(contentsOf: URL(fileURLWithPath: compressedPath))
            for i in stride(from: bytes.count / 3, to: bytes.count / 3 + 64, by: 1) { bytes[i] ^= 0x5A }
            try bytes.write(to: URL(fileURLWithPath: compressedPath))

            let outcome = try #require(ParserFixture.withDeadline { try ParserFixture.readCSV(path: compressedPath) },
                                       "reading a corrupt \(compression) file did not finish")
            guard case .failure(let failure) = outcome else {
                Issue.record("a corrupt \(compression) file was read without an error")
                return
            }
            let error = try #require(failure as? SluiceError)
            #expect(error.message.contains("corrupt"), "\(error)")
        }

        /// `cat a.gz b.gz > ab.gz` (and the same for zstd frames) is one valid compressed stream.
        @Test(arguments: [Compression.gzip, .zstd])
        func concatenatedMembersAreReadFully(_ compression: Compression) throws {
            let first = try files.compress(try files.write("a,b\n1,2\n3,4\n", named: "first.csv"), with: compression)
            let second = try files.compress(try files.write("5,6\n7,8\n", named: "second.csv"), with: compression)
            let joined = try Data(contentsOf: URL(fileURLWithPath: first)) + Data(contentsOf: URL(fileURLWithPath: second))
            let path = try files.write(bytes: Array(joined), named: "joined.csv" + compression.fileExtension)

            let outcome = try #require(ParserFixture.withDeadline(seconds: 20) { try ParserFixture.readCSV(path: path) },
                                       "reading concatenated \(compression) members did not finish")
            let parsed = try outcome.get()
            #expect(parsed.rows == [[.text("1"), .text("2")], [.text("3"), .text("4")], [.text("5"), .text("6")], [.text("7"), .text("8")]])
            #expect(parsed.origins == [2, 3, 4, 5])
        }
    }
}

// MARK: - JSON Lines

extension ParserTests {
    @Suite struct JSONLines {
        let files: ParserFixture.TempDirectory
        init() throws { files = try ParserFixture.TempDirectory() }

        @Test func nestedObjectsAndArraysKeepTheirJSONText() throws {
            let parsed = try files.readJSONL("""
                {"id":1,"obj":{"a":[1, 2,{"b":null}]},"arr":[1,"x",[]],"empty":{}}
                {"id":2,"obj":null,"arr":[],"empty":[ ]}

                """)
            #expect(parsed.names == ["id", "obj", "arr", "empty"])
            #expect(parsed.rows == [
                [.number("1"), .nested("{\"a\":[1, 2,{\"b\":null}]}"), .nested("[1,\"x\",[]]"), .nested("{}")],
                [.number("2"), .null, .nested("[]"), .nested("[ ]")],
            ])
        }

        @Test func stringEscapesIncludingSurrogatePairs() throws {
            let parsed = try files.readJSONL(#"""
                {"s":"caf\u00e9 \ud83d\ude00 \"q\" back\\slash \/ tab\tnl\n","plain":"😀 é"}
                {"s":"lone \ud800 high","plain":"\u0041\u00DF"}

                """#)
            #expect(parsed.column("s") == [.text("café 😀 \"q\" back\\slash / tab\tnl\n"), .text("lone \u{FFFD} high")])
            #expect(parsed.column("plain") == [.text("😀 é"), .text("Aß")])
        }

        @Test func escapedKeysAreUnescaped() throws {
            let parsed = try files.readJSONL(#"{"a\"b":1,"\u00e9":2}"# + "\n")
            #expect(parsed.names == ["a\"b", "é"])
            #expect(parsed.rows == [[.number("1"), .number("2")]])
        }

        @Test func invalidLineIsRejectedWithItsLineNumber() throws {
            let parsed = try files.readJSONL("""
                {"id":1}
                {"id":2,
                {"id":3}
                {"id":4} trailing
                {"id":'5'}
                {"id":6}
                """)
            #expect(parsed.column("id") == [.number("1"), .number("3"), .number("6")])
            #expect(parsed.origins == [1, 3, 6])
            #expect(parsed.rejections.map(\.origin) == [2, 4, 5])
            #expect(parsed.rejections.map(\.raw) == [#"{"id":2,"#, #"{"id":4} trailing"#, #"{"id":'5'}"#])
            #expect(parsed.rejections.allSatisfy { $0.reason == .parse && $0.message.hasPrefix("invalid JSON at column ") })
            #expect(parsed.rejections.first?.message == "invalid JSON at column 9: expected a key")
        }

        @Test(arguments: ["[1,2]", "42", "\"text\"", "null", "true"])
        func nonObjectLineIsRejected(_ line: String) throws {
            let parsed = try files.readJSONL("{\"a\":1}\n\(line)\n{\"a\":2}\n")
            #expect(parsed.column("a") == [.number("1"), .number("2")])
            #expect(parsed.rejections.map(\.message) == ["invalid JSON at column 1: a record must be a JSON object"])
            #expect(parsed.rejections.map(\.origin) == [2])
        }

        @Test func hundredThousandLevelsOfNestingAreRejectedWithoutRecursion() throws {
            let depth = 100_000
            let nestedValue = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            let parsed = try files.readJSONL("""
                {"id":1}
                {"id":2,"deep":\(nestedValue)}
                \(String(repeating: "[", count: depth))
                {"id":4}

                """)
            #expect(parsed.column("id") == [.number("1"), .number("4")])
            #expect(parsed.origins == [1, 4])
            #expect(parsed.rejections.map(\.origin) == [2, 3])
            #expect(parsed.rejections.first?.message.contains("nesting deeper than 512 levels") == true)
            #expect(parsed.rejections.last?.message.contains("a record must be a JSON object") == true)
        }

        @Test func keysInAnyOrderAndMissingKeysReadAsNull() throws {
            let parsed = try files.readJSONL("""
                {"a":1,"b":"x"}
                {"b":"y","a":2}
                {"c":true}
                {"a":3,"a":99}
                {}

                """)
            #expect(parsed.names == ["a", "b", "c"])
            #expect(parsed.rows == [
                [.number("1"), .text("x"), .null],
                [.number("2"), .text("y"), .null],
                [.null, .null, .bool("true")],
                [.number("3"), .null, .null],     // a duplicate key: the first value wins
                [.null, .null, .null],
            ])
        }

        @Test func blankLinesAreIgnoredButCounted() throws {
            let parsed = try files.readJSONL("\n{\"a\":1}\n   \n\t\r\n{\"a\":2}\r\n\n")
            #expect(parsed.column("a") == [.number("1"), .number("2")])
            #expect(parsed.origins == [2, 5])
            #expect(parsed.rejections.isEmpty)
        }

        @Test func byteOrderMarkAndMissingFinalNewline() throws {
            let parsed = try files.readJSONL(bytes: [0xEF, 0xBB, 0xBF] + Array("{\"a\":1}\n{\"a\":2}".utf8))
            #expect(parsed.names == ["a"])
            #expect(parsed.column("a") == [.number("1"), .number("2")])
            #expect(parsed.origins == [1, 2])
        }

        @Test func hugeNumbersKeepTheirTextAndTypeAsDouble() throws {
            let parsed = try files.readJSONL("""
                {"huge":1e400,"wide":123456789012345678901234567890,"max":9223372036854775807,"over":9223372036854775808,"tiny":-1e-400}

                """)
            #expect(parsed.rows == [[.number("1e400"), .number("123456789012345678901234567890"),
                                     .number("9223372036854775807"), .number("9223372036854775808"), .number("-1e-400")]])
            let (typed, rejected) = BatchTyper(declared: Schema()).type(try #require(parsed.batches.first))
            #expect(rejected.isEmpty)
            let row = typed.row(0)
            #expect(row["huge"] == .double(.infinity))
            #expect(row["wide"] == .double(1.2345678901234568e29))
            #expect(row["max"] == .int64(.max))
            #expect(row["over"] == .double(9.223372036854775808e18))
            #expect(row["tiny"] == .double(-0.0))
        }

        @Test func batchesRespectMaxRowsAndKeepColumns() throws {
            let path = try files.write("{\"a\":1}\n{\"a\":2}\n{\"b\":3}\n{\"a\":4}\n{\"a\":5}\n")
            let parsed = try ParserFixture.readJSONL(path: path, maxRows: 2)
            #expect(parsed.batches.map(\.rowCount) == [2, 2, 1])
            #expect(parsed.batches.map(\.names) == [["a"], ["a", "b"], ["a", "b"]])
            #expect(parsed.column("a") == [.number("1"), .number("2"), .null, .number("4"), .number("5")])
            #expect(parsed.origins == [1, 2, 3, 4, 5])
        }
    }
}

// MARK: - JSON documents

extension ParserTests {
    @Suite struct JSONDocument {
        let files: ParserFixture.TempDirectory
        init() throws { files = try ParserFixture.TempDirectory() }

        @Test func topLevelArrayOfObjects() throws {
            let parsed = try files.readJSONDocument("""
                [
                  {"a": 1, "b": "x"},
                  {"a": 2, "b": [1, {"c": null}]},
                  {"c": false}
                ]

                """)
            #expect(parsed.names == ["a", "b", "c"])
            #expect(parsed.rows == [
                [.number("1"), .text("x"), .null],
                [.number("2"), .nested("[1, {\"c\": null}]"), .null],
                [.null, .null, .bool("false")],
            ])
            #expect(parsed.origins == [2, 3, 4])
        }

        @Test func recordsPathSkipsEverythingElse() throws {
            // Decoys: a "data.items" inside another key, brackets in strings, a nested "items" key.
            let parsed = try files.readJSONDocument("""
                {
                  "meta": {"note": "items: [not these] }", "data": {"items": [{"wrong": 1}]}},
                  "junk": [[[]], {"a": [1, 2, {"b": "]}"}]}, "\\"quoted\\""],
                  "data": {
                    "count": 2,
                    "nested": {"items": [{"wrong": 2}]},
                    "items": [
                      {"id": 1, "name": "first"},
                      {"id": 2, "name": "second"}
                    ],
                    "after": "ignored"
                  },
                  "trailer": true
                }

                """, recordsPath: "data.items")
            #expect(parsed.names == ["id", "name"])
            #expect(parsed.rows == [[.number("1"), .text("first")], [.number("2"), .text("second")]])
            #expect(parsed.origins == [8, 9])
        }

        /// The first read returns only the 4 bytes peeked for compression detection, so the first
        /// element of a one-line array is always cut by a refill.
        @Test(arguments: [
            ("[{\"a\":1},{\"a\":2}]", [[Cell.number("1")], [.number("2")]]),
            ("[{\"a\":true}]", [[Cell.bool("true")]]),
            ("[{\"abc\":\"x\"},{\"abc\":\"y\"}]\n", [[Cell.text("x")], [.text("y")]]),
        ])
        func oneLineArray(_ document: String, _ rows: [[Cell]]) throws {
            let parsed = try files.readJSONDocument(document)
            #expect(parsed.rows == rows)
            #expect(parsed.rejections.isEmpty)
        }

        struct CutValue: Sendable, CustomTestStringConvertible {
            var json: String
            /// How many bytes of the value (or, for the string, of its text up to the escape's hex
            /// digits) come before the read boundary.
            var before: Int
            var expected: Cell
            var testDescription: String { json }
        }

        /// A value cut by the 1 MiB read boundary must be completed by the next read, not reported
        /// as invalid JSON.
        @Test(arguments: [
            CutValue(json: "true", before: 2, expected: .bool("true")),
            CutValue(json: "false", before: 2, expected: .bool("false")),
            CutValue(json: "null", before: 2, expected: .null),
            CutValue(json: "\"caf\\u00e9\"", before: 8, expected: .text("café")),   // boundary inside "00e9"
            CutValue(json: "1234567", before: 3, expected: .number("1234567")),
        ])
        func valueCutByAReadBoundary(_ value: CutValue) throws {
            let boundary = 4 + (1 << 20)            // 4 peeked bytes, then one 1 MiB read
            let prefix = "{\"pad\":\""
            let middle = "\",\"v\":"
            let padding = String(repeating: "x", count: boundary - value.before - prefix.utf8.count - middle.utf8.count)
            let parsed = try files.readJSONDocument(prefix + padding + middle + value.json + "}\n")
            #expect(parsed.column("v") == [value.expected])
        }

        /// Records after a buffer refill must be the next ones in the file; this layout once made the
        /// reader resume about 1 MB further on, dropping ~39,000 records without an error.
        @Test func noRecordIsSkippedAcrossBufferRefills() throws {
            let count = 100_000
            var text = "[\n" + String(repeating: " ", count: 19)
            for i in 1...count { text += "{\"id\":\(i),\"v\":\"x\(i)\"}\(i < count ? "," : "")\n" }
            text += "]\n"
            let parsed = try files.readJSONDocument(text)
            let ids = parsed.column("id").map { cell -> Int in
                if case .number(let digits) = cell { return Int(digits) ?? -1 }
                return -1
            }
            #expect(parsed.rowCount == count)
            let firstGap = zip(ids, ids.dropFirst()).first { $1 != $0 + 1 }
            #expect(firstGap == nil, "ids jump from \(firstGap?.0 ?? 0) to \(firstGap?.1 ?? 0)")
        }

        @Test func singleTopLevelObjectIsOneRecord() throws {
            let parsed = try files.readJSONDocument("{\"id\": 7, \"tags\": [\"a\"]}\n")
            #expect(parsed.rows == [[.number("7"), .nested("[\"a\"]")]])
            #expect(parsed.origins == [1])
        }

        @Test func emptyArrayYieldsNoBatch() throws {
            let path = try files.write("[ ]\n")
            let reader = JSONDocumentReader(reader: try openByteReader(path: path), location: path, recordsPath: nil)
            #expect(try reader.next(maxRows: 100, maxBytes: 1 << 20) == nil)
        }

        @Test func nonObjectElementIsRejectedAndTheOthersLoad() throws {
            let parsed = try files.readJSONDocument("[\n{\"a\":1},\n42,\n{\"a\":2}\n]\n")
            #expect(parsed.column("a") == [.number("1"), .number("2")])
            #expect(parsed.origins == [2, 4])
            #expect(parsed.rejections.map(\.message) == ["record 2: a record must be a JSON object"])
            #expect(parsed.rejections.map(\.origin) == [3])
        }

        struct LocateProblem: Sendable, CustomTestStringConvertible {
            var document: String
            var recordsPath: String?
            var message: String
            var testDescription: String { "\(recordsPath ?? "no records_path") in \(document)" }
        }

        @Test(arguments: [
            LocateProblem(document: "{\"data\": {\"other\": []}}", recordsPath: "data.items", message: "records_path: key 'items' not found"),
            LocateProblem(document: "{\"data\": {\"items\": 3}}", recordsPath: "data.items", message: "records_path 'data.items' is not an array"),
            LocateProblem(document: "{\"data\": [1]}", recordsPath: "data.items", message: "records_path: 'items' is not inside an object"),
            LocateProblem(document: "42", recordsPath: nil, message: "neither an array of records nor an object"),
        ])
        func recordsPathProblemsAreErrors(_ problem: LocateProblem) throws {
            let path = try files.write(problem.document)
            let error = #expect(throws: SluiceError.self) {
                try ParserFixture.readJSONDocument(path: path, recordsPath: problem.recordsPath)
            }
            #expect(error?.message.contains(problem.message) == true, "\(String(describing: error))")
            #expect(error?.kind == .parse)
            #expect(error?.location == "\(path) line 1")
        }

        @Test func truncatedDocumentNamesTheLine() throws {
            let path = try files.write("[\n{\"a\":1},\n{\"a\":2},\n{\"a\":")
            let outcome = try #require(ParserFixture.withDeadline { try ParserFixture.readJSONDocument(path: path) },
                                       "reading a truncated JSON document did not finish")
            let error = #expect(throws: SluiceError.self) { try outcome.get() }
            #expect(error?.message.contains("unexpected end of input") == true, "\(String(describing: error))")
            #expect(error?.location == "\(path) line 4")
        }

        @Test func twoHundredThousandRecordsInBatchesOfTenThousand() throws {
            let count = 200_000
            var text = "[\n"
            for i in 1...count { text += "{\"id\":\(i),\"v\":\"x\(i)\"}\(i < count ? "," : "")\n" }
            text += "]\n"
            let path = try files.write(text)
            let parsed = try ParserFixture.readJSONDocument(path: path, maxRows: 10_000)
            #expect(parsed.batches.count == 20)
            #expect(parsed.batches.allSatisfy { $0.rowCount == 10_000 })
            #expect(parsed.rowCount == count)
            #expect(parsed.rejections.isEmpty)
            // One record per line after the opening bracket: record i is on line i + 1.
            let linesMatch = parsed.origins == Array(2...(count + 1))   // outside #expect: 200,000 numbers
            #expect(linesMatch, "origins \(parsed.origins.prefix(3))… \(parsed.origins.suffix(3))")
            #expect(parsed.column("id").last == .number("200000"))
            #expect(parsed.column("v")[123_456] == .text("x123457"))
        }
    }
}

// MARK: - Fuzzing

extension ParserTests {
    @Suite struct Fuzz {
        let files: ParserFixture.TempDirectory
        init() throws { files = try ParserFixture.TempDirectory() }

        enum Format: String, CaseIterable, Sendable { case csv, jsonl, jsonDocument }

        static let seeds: [Format: String] = [
            .csv: #"""
                id,name,amount,when,note
                1,alpha,12.50,2024-03-02,plain
                2,"beta, inc",-3,2024-03-03T10:00:00Z,"said ""hi"""
                3,gamma,,1969-12-31,"two
                lines"
                4,δέλτα,1e3,2024-02-29,NULL
                5,epsilon,7,2024-03-05 08:00:00+01:00,x

                """#,
            .jsonl: #"""
                {"id":1,"name":"alpha","tags":["a","b"],"meta":{"x":1.5,"y":null}}
                {"id":2,"name":"caf\u00e9 \ud83d\ude00","ok":true,"amount":-3}
                {"name":"gamma","id":3,"when":"2024-03-02T08:00:00+01:00"}

                {"id":4,"nested":[[1,[2,[3]]],{"k":"v"}],"amount":1e3}
                {"id":5,"name":"e\"q\\","ok":false}

                """#,
            .jsonDocument: """
                {"meta": {"n": 5}, "data": {"items": [
                  {"id": 1, "name": "alpha", "tags": ["a", "b"]},
                  {"id": 2, "name": "caf\\u00e9", "ok": true},
                  {"name": "gamma", "id": 3, "when": "2024-03-02T08:00:00Z"},
                  {"id": 4, "nested": [[1, [2]], {"k": "v"}]},
                  {"id": 5, "amount": -1.5e3}
                ]}}

                """,
        ]

        /// Bytes that are structural in one of the formats, plus bytes that break UTF-8.
        static let interestingBytes = Array("\",;\n\r{}[]:\\'0 e-".utf8) + [0x00, 0xC3, 0xE9, 0xFF, 0xEF, 0xBB, 0xBF]

        /// 300 randomly mutated copies of a valid input, each read to the end and typed. The reader
        /// must return or throw a `SluiceError` (a crash ends the test run, a hang fails the deadline);
        /// every parsed row must come out of the typer either typed or rejected; line numbers must lie
        /// inside the file.
        @Test(arguments: Format.allCases)
        func mutatedInputNeverCrashesOrHangs(_ format: Format) throws {
            let original = Array(Self.seeds[format]!.utf8)
            let path = files.directory.appendingPathComponent("fuzz").path
            // The unmutated seed is valid: five records, nothing rejected.
            try Data(original).write(to: URL(fileURLWithPath: path))
            let baseline = try Self.readAndType(path, format)
            #expect(baseline.rawRows == 5 && baseline.typedRows == 5)
            #expect(baseline.rawRejections + baseline.typedRejections == 0)

            var random = SeededRandom(seed: 0x5EED_0000 + UInt64(format.rawValue.count))
            for iteration in 0..<300 {
                let input = Self.mutate(original, using: &random)
                try Data(input).write(to: URL(fileURLWithPath: path))
                guard let outcome = ParserFixture.withDeadline(seconds: 20, { try Self.readAndType(path, format) }) else {
                    Issue.record("iteration \(iteration) did not finish: \(Self.show(input))")
                    return
                }
                switch outcome {
                case .failure(let error):
                    #expect(error is SluiceError, "iteration \(iteration) threw \(error): \(Self.show(input))")
                case .success(let summary):
                    #expect(summary.rawRows + summary.rawRejections > 0, "iteration \(iteration) read nothing: \(Self.show(input))")
                    #expect(summary.typedRows + summary.typedRejections == summary.rawRows + summary.rawRejections,
                            "iteration \(iteration) lost records in typing: \(Self.show(input))")
                    let lines = Self.physicalLines(input)
                    #expect(summary.origins.allSatisfy { (1...lines).contains($0) },
                            "iteration \(iteration) line numbers \(summary.origins) outside 1...\(lines): \(Self.show(input))")
                }
            }
        }

        struct Summary: Sendable {
            var rawRows = 0, rawRejections = 0, typedRows = 0, typedRejections = 0
            var origins: [Int] = []
        }

        static func readAndType(_ path: String, _ format: Format) throws -> Summary {
            let parsed: ParserFixture.Parsed
            switch format {
            case .csv: parsed = try ParserFixture.readCSV(path: path, maxRows: 3)
            case .jsonl: parsed = try ParserFixture.readJSONL(path: path, maxRows: 3)
            case .jsonDocument: parsed = try ParserFixture.readJSONDocument(path: path, recordsPath: "data.items", maxRows: 3)
            }
            // A declared column exercises conversion failures; the rest is inferred and widened.
            let typer = BatchTyper(declared: Schema([Field("id", .int64)]))
            var summary = Summary()
            for raw in parsed.batches {
                let (typed, rejected) = typer.type(raw)
                summary.rawRows += raw.rowCount
                summary.rawRejections += raw.rejected.count
                summary.typedRows += typed.rowCount
                summary.typedRejections += rejected.count
                summary.origins += raw.origins + raw.rejected.compactMap(\.origin)
            }
            return summary
        }

        static func mutate(_ input: [UInt8], using random: inout SeededRandom) -> [UInt8] {
            var bytes = input
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                let byte = Bool.random(using: &random) ? interestingBytes.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes[at] = byte
                case 1: bytes.insert(byte, at: at)
                case 2: if bytes.count > 1 { bytes.remove(at: at) }
                default:
                    // Duplicate a short run, as a repeated quote or bracket sequence would.
                    let end = min(bytes.count, at + Int.random(in: 1...12, using: &random))
                    bytes.insert(contentsOf: bytes[at..<end], at: at)
                }
            }
            return bytes
        }

        /// Lines as a reader counts them: LF, CRLF or a lone CR end a line.
        static func physicalLines(_ bytes: [UInt8]) -> Int {
            var lines = 1
            for (i, b) in bytes.enumerated() where b == 10 || (b == 13 && (i + 1 == bytes.count || bytes[i + 1] != 10)) {
                lines += 1
            }
            return lines
        }

        static func show(_ bytes: [UInt8]) -> String { String(reflecting: String(decoding: bytes, as: UTF8.self)) }
    }
}

// MARK: - Helpers

/// Temporary files and reader plumbing shared by `ParserTests` and `TypingTests`.
enum ParserFixture {
    /// A value as the raw parser produced it.
    enum Cell: Equatable, Sendable, CustomStringConvertible {
        case null, text(String), number(String), bool(String), nested(String)

        var description: String {
            switch self {
            case .null: "null"
            case .text(let s): "text(\(String(reflecting: s.count > 200 ? String(s.prefix(200)) + "…" : s)))"
            case .number(let s): "number(\(s))"
            case .bool(let s): "bool(\(s))"
            case .nested(let s): "nested(\(s))"
            }
        }
    }

    /// Everything a reader returned for one file.
    struct Parsed: Sendable {
        var header: [String] = []
        var batches: [RawBatch] = []

        var names: [String] { batches.last?.names ?? header }
        var rowCount: Int { batches.reduce(0) { $0 + $1.rowCount } }
        var origins: [Int] { batches.flatMap(\.origins) }
        var rejections: [Rejection] { batches.flatMap(\.rejected) }

        /// Rows in `names` order; a column that appeared only in a later batch reads as null before it.
        var rows: [[Cell]] {
            let names = self.names
            return batches.flatMap { batch in
                let index = Dictionary(batch.names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
                return (0..<batch.rowCount).map { row in
                    names.map { name in index[name].map { ParserFixture.cell(batch.columns[$0], row) } ?? .null }
                }
            }
        }

        func column(_ name: String) -> [Cell] {
            guard let c = names.firstIndex(of: name) else { return [] }
            return rows.map { $0[c] }
        }
    }

    static func cell(_ column: RawColumn, _ row: Int) -> Cell {
        let text = column.text(at: row)
        switch RawKind(rawValue: column.kinds[row]) {
        case .null?: return .null
        case .number?: return .number(text)
        case .bool?: return .bool(text)
        case .nested?: return .nested(text)
        case .text?, nil: return .text(text)
        }
    }

    /// Reads batches until the reader returns nil. Stops with a recorded issue if a reader keeps
    /// returning empty batches, so a broken reader fails instead of spinning.
    static func drain(_ next: () throws -> RawBatch?) throws -> [RawBatch] {
        var batches: [RawBatch] = []
        var empty = 0
        while let batch = try next() {
            batches.append(batch)
            empty = batch.rowCount + batch.rejected.count == 0 ? empty + 1 : 0
            if empty > 100 {
                Issue.record("the reader keeps returning empty batches")
                break
            }
        }
        return batches
    }

    static func readCSV(path: String, options: CSVOptions = CSVOptions(), maxRows: Int = 1_000_000) throws -> Parsed {
        let reader = try CSVReader(reader: openByteReader(path: path), options: options, location: path)
        let batches = try drain { try reader.next(maxRows: maxRows, maxBytes: 1 << 30) }
        return Parsed(header: reader.header, batches: batches)
    }

    static func readJSONL(path: String, maxRows: Int = 1_000_000) throws -> Parsed {
        let reader = JSONLReader(reader: try openByteReader(path: path), location: path)
        return Parsed(batches: try drain { try reader.next(maxRows: maxRows, maxBytes: 1 << 30) })
    }

    static func readJSONDocument(path: String, recordsPath: String? = nil, maxRows: Int = 1_000_000) throws -> Parsed {
        let reader = JSONDocumentReader(reader: try openByteReader(path: path), location: path, recordsPath: recordsPath)
        return Parsed(batches: try drain { try reader.next(maxRows: maxRows, maxBytes: 1 << 30) })
    }

    /// Runs `body` on its own thread and waits at most `seconds`; nil when it did not finish (the
    /// thread is left behind, and ends with the test process).
    static func withDeadline<T: Sendable>(seconds: Double = 30, _ body: @escaping @Sendable () throws -> T) -> Result<T, any Error>? {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            box.result = Result { try body() }
            done.signal()
        }
        thread.stackSize = 16 << 20
        thread.start()
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        return box.result
    }

    /// Written by the worker thread before it signals, read by the waiter after: the semaphore orders them.
    final class ResultBox<T: Sendable>: @unchecked Sendable {
        var result: Result<T, any Error>?
    }

    /// A fresh directory under the system temporary directory, removed when the last reference goes.
    final class TempDirectory: Sendable {
        let directory: URL

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-parser-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        @discardableResult
        func write(bytes: [UInt8], named name: String = "input") throws -> String {
            let url = directory.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            return url.path
        }

        @discardableResult
        func write(_ text: String, named name: String = "input") throws -> String {
            try write(bytes: Array(text.utf8), named: name)
        }

        func readCSV(_ text: String, options: CSVOptions = CSVOptions()) throws -> Parsed {
            try ParserFixture.readCSV(path: write(text), options: options)
        }

        func readCSV(bytes: [UInt8], options: CSVOptions = CSVOptions()) throws -> Parsed {
            try ParserFixture.readCSV(path: write(bytes: bytes), options: options)
        }

        func readJSONL(_ text: String) throws -> Parsed { try ParserFixture.readJSONL(path: write(text)) }
        func readJSONL(bytes: [UInt8]) throws -> Parsed { try ParserFixture.readJSONL(path: write(bytes: bytes)) }

        func readJSONDocument(_ text: String, recordsPath: String? = nil) throws -> Parsed {
            try ParserFixture.readJSONDocument(path: write(text), recordsPath: recordsPath)
        }

        /// Compresses `path` with the system tool, keeping the original; returns the new file's path.
        func compress(_ path: String, with compression: Compression) throws -> String {
            let output = path + compression.fileExtension
            switch compression {
            case .gzip: try ParserFixture.run("/usr/bin/gzip", ["-k", "-f", "-n", path])
            case .zstd: try ParserFixture.run("/usr/bin/zstd", ["-q", "-f", path, "-o", output])
            case .none: return path
            }
            return output
        }
    }

    struct ToolFailed: Error, CustomStringConvertible {
        var description: String
    }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ToolFailed(description: "\(tool) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
    }
}
