import TestSupport
import Testing

@testable import OSLayer
@testable import TensorEngine

@Suite("ByteSize")
struct ByteSizeTests {
    static let accepted: [(String, Int)] = [
        ("5GB", 5_000_000_000),
        ("5GiB", 5 * (1 << 30)),
        ("1.5GB", 1_500_000_000),
        ("1.5GiB", 1_610_612_736),
        ("0.5KiB", 512),
        ("100KB", 100_000),
        ("200KB", 200_000),
        ("5gb", 5_000_000_000),
        ("5Gib", 5 * (1 << 30)),
        ("5gIB", 5 * (1 << 30)),
        ("1234", 1234),
        ("1234B", 1234),
        ("1234b", 1234),
        ("0", 0),
        ("1TB", 1_000_000_000_000),
        ("2TiB", 2 * (1 << 40)),
        ("3MiB", 3 * (1 << 20)),
        ("500MB", 500_000_000),
        ("1.0000000001KB", 1000),  // fractions are truncated to whole bytes
        ("0.001KB", 1),
        ("0.0001KB", 0),
        ("7KiB", 7168),
        ("9223372036854775807", Int.max),
        ("8388607TiB", 8_388_607 * (1 << 40)),
    ]

    @Test(arguments: ByteSizeTests.accepted)
    func parses(text: String, bytes: Int) throws {
        #expect(ByteSize.parseOrNil(text) == bytes)
        #expect(try ByteSize.parse(text) == bytes)
    }

    static let refused: [String] = [
        "5 GB", " 5GB", "5GB ", "GB", "1.5", "1.5B",  // a fraction of a byte is not a size
        "-1GB", "-1", "+1GB", "5XB", "5G", "5GBB", "1e3", "1e3GB", "", ".5GB", "5.GB", "1,5GB", "1_000",
        "99999999999TB", "9223372036854775808", "8388608TiB", "0x10", "５GB",
    ]

    @Test(arguments: ByteSizeTests.refused)
    func rejects(text: String) throws {
        #expect(ByteSize.parseOrNil(text) == nil)
        let error = try #require(throws: UsageError.self) { try ByteSize.parse(text) }
        #expect(error.message == "invalid size '\(text)': use a number of bytes or a size such as 5GB, 1.5GiB or 500MB")
        #expect(error.message.contains("5GB"))
        #expect(error.category == .usage)
    }

    @Test func binaryFormatting() {
        #expect(ByteSize.binary(0) == "0 B")
        #expect(ByteSize.binary(10) == "10 B")
        #expect(ByteSize.binary(1023) == "1023 B")
        #expect(ByteSize.binary(1024) == "1.00 KiB")
        #expect(ByteSize.binary(1536) == "1.50 KiB")
        #expect(ByteSize.binary(1536, digits: 1) == "1.5 KiB")
        #expect(ByteSize.binary(512 * 1024, digits: 0) == "512 KiB")
        #expect(ByteSize.binary(16 << 30) == "16.00 GiB")
        #expect(ByteSize.binary(16 << 30, digits: 1) == "16.0 GiB")
        #expect(ByteSize.binary(131_072) == "128.00 KiB")
        #expect(ByteSize.binary(369_280) == "360.63 KiB")  // 360.625 exactly: half rounds away from zero
        #expect(ByteSize.binary(-2048) == "-2.00 KiB")
        #expect(ByteSize.binary(-5) == "-5 B")
        #expect(ByteSize.binary(1 << 50) == "1.00 PiB")
        #expect(ByteSize.binary(1 << 60) == "1024.00 PiB")  // PiB is the largest unit
        #expect(ByteSize.binary(Int.min) == "-8192.00 PiB")
    }

    @Test func decimalFormatting() {
        #expect(ByteSize.decimal(999) == "999 B")
        #expect(ByteSize.decimal(1000) == "1.00 KB")
        #expect(ByteSize.decimal(17_100_000_000) == "17.10 GB")
        #expect(ByteSize.decimal(17_100_000_000, digits: 1) == "17.1 GB")
        #expect(ByteSize.decimal(369_280) == "369.28 KB")
        #expect(ByteSize.decimal(5_000_000_000_000) == "5.00 TB")
        #expect(ByteSize.decimal(2_500_000_000_000_000) == "2.50 PB")
    }

    @Test func fixedFormatting() {
        #expect(ByteSize.fixed(2.5, digits: 0) == "3")  // .rounded(): half away from zero
        #expect(ByteSize.fixed(-2.5, digits: 0) == "-3")
        #expect(ByteSize.fixed(0.125, digits: 2) == "0.13")
        #expect(ByteSize.fixed(1.999, digits: 2) == "2.00")
        #expect(ByteSize.fixed(12.3456, digits: 0) == "12")
        #expect(ByteSize.fixed(12.3456, digits: 3) == "12.346")
        #expect(ByteSize.fixed(0.05, digits: 3) == "0.050")
        #expect(ByteSize.fixed(-0.001, digits: 2) == "0.00")  // no "-0.00"
        #expect(ByteSize.fixed(-1.5, digits: 1) == "-1.5")
        #expect(ByteSize.fixed(0, digits: 2) == "0.00")
        #expect(ByteSize.fixed(.infinity, digits: 2) == "inf")
        #expect(ByteSize.fixed(.nan, digits: 2) == "nan")
    }
}
