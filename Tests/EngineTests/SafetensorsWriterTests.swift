import Foundation
import OrderedCollections
import TestSupport
import Testing

@testable import Checkpoint
@testable import OSLayer
@testable import StrictJSON
@testable import TensorEngine

@Suite("Safetensors writer")
struct SafetensorsWriterTests {
    // MARK: - The reference's byte vectors (safetensors.md)

    @Test func emptyFile() throws {
        let layout = try SafetensorsLayout(tensors: [], metadata: nil)
        let expected: [UInt8] = [0x08, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20]
        #expect(layout.headerBytes == expected)
        #expect(layout.fileByteCount == 16)
        let folder = try TemporaryFolder("writer")
        defer { folder.remove() }
        try writeSafetensors([], metadata: nil, to: folder.file("empty.safetensors"))
        #expect(try fileBytes(folder.file("empty.safetensors")) == expected)
    }

    @Test func attnVector() throws {
        let folder = try TemporaryFolder("writer")
        defer { folder.remove() }
        let data = float32Bytes([0, 1, 2, 3, 4, 5])
        try writeSafetensors(
            [(TensorSpec(name: "attn.0", dtype: .f32, shape: [1, 2, 3]), data)], metadata: nil,
            to: folder.file("a.safetensors"))
        let text = #"{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}"#
        #expect(text.utf8.count == 64)  // no padding needed
        let bytes = try fileBytes(folder.file("a.safetensors"))
        #expect(bytes.count == 96)
        #expect(bytes == [64, 0, 0, 0, 0, 0, 0, 0] + Array(text.utf8) + data)
    }

    @Test func testVector() throws {
        let folder = try TemporaryFolder("writer")
        defer { folder.remove() }
        try writeSafetensors(
            [(TensorSpec(name: "test", dtype: .i32, shape: [2, 2]), [UInt8](repeating: 0, count: 16))], metadata: nil,
            to: folder.file("t.safetensors"))
        let text = #"{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}"# + "    "
        let bytes = try fileBytes(folder.file("t.safetensors"))
        #expect(bytes.count == 88)
        #expect(bytes == [64, 0, 0, 0, 0, 0, 0, 0] + Array(text.utf8) + [UInt8](repeating: 0, count: 16))
    }

    @Test func piEmptyMaskVector() throws {
        let folder = try TemporaryFolder("writer")
        defer { folder.remove() }
        // Given in another order: the writer sorts F64, F32, BOOL.
        try writeSafetensors(
            [
                (TensorSpec(name: "mask", dtype: .bool, shape: [3]), [1, 0, 1]),
                (TensorSpec(name: "empty", dtype: .f32, shape: [0, 3]), []),
                (
                    TensorSpec(name: "pi", dtype: .f64, shape: []),
                    withUnsafeBytes(of: Double.pi.bitPattern.littleEndian) { Array($0) }
                ),
            ], metadata: nil, to: folder.file("p.safetensors"))
        let text =
            #"{"pi":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]},"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[8,11]}}"#
            + "     "
        let bytes = try fileBytes(folder.file("p.safetensors"))
        #expect(bytes.count == 8 + 176 + 11)
        #expect(Array(bytes[0..<8]) == [176, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(bytes[8..<184]) == Array(text.utf8))
        #expect(Array(bytes[184...]) == [0x18, 0x2d, 0x44, 0x54, 0xfb, 0x21, 0x09, 0x40, 0x01, 0x00, 0x01])
    }

    @Test func emptyMetadataAndNoTensors() throws {
        let layout = try SafetensorsLayout(tensors: [], metadata: [:])
        let text = #"{"__metadata__":{}}"# + "     "
        #expect(layout.headerBytes == [24, 0, 0, 0, 0, 0, 0, 0] + Array(text.utf8))
    }

    @Test func metadataFirstInGivenOrder() throws {
        let layout = try SafetensorsLayout(
            tensors: [TensorSpec(name: "w", dtype: .u8, shape: [2])], metadata: ["z": "1", "format": "pt", "é": "\"/"])
        let text =
            #"{"__metadata__":{"z":"1","format":"pt","é":"\"/"},"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#
        let padding = (8 - text.utf8.count % 8) % 8
        #expect(padding == 1)  // 103 bytes of JSON
        #expect(Array(layout.headerBytes[8...]) == Array(text.utf8) + [UInt8](repeating: 0x20, count: padding))
        #expect(layout.headerBytes.count % 8 == 0)
    }

    // MARK: - Order and escaping

    @Test func ordersByDTypeRankThenBytewiseName() throws {
        let specs = DType.allCases.map { TensorSpec(name: "t_" + $0.rawValue, dtype: $0, shape: [8]) }
        let layout = try SafetensorsLayout(tensors: specs.reversed(), metadata: nil)
        #expect(
            layout.tensors.map(\.dtype.rawValue) == [
                "U64", "I64", "F64", "C64", "F32", "U32", "I32", "BF16", "F16", "U16", "I16", "F8_E5M2FNUZ",
                "F8_E4M3FNUZ",
                "F8_E8M0", "F8_E4M3", "F8_E5M2", "I8", "U8", "F6_E3M2", "F6_E2M3", "F4", "BOOL",
            ])
        // Offsets are back to back, 8 elements each.
        #expect(
            layout.tensors.map(\.begin) == [
                0, 64, 128, 192, 256, 288, 320, 352, 368, 384, 400, 416, 424, 432, 440, 448, 456, 464, 472, 478, 484,
                488,
            ])
        #expect(layout.dataByteCount == 496)

        // Same dtype: bytewise UTF-8 order. "e\u{301}" (bytes 65 CC 81) sorts before "f" bytewise, although
        // Swift's String comparison (canonical, as "é") would put it after.
        let names = ["b", "a", "B", "ü", "a0", "_", "Z", "f", "e\u{301}"]
        let sameType = try SafetensorsLayout(
            tensors: names.map { TensorSpec(name: $0, dtype: .f32, shape: [1]) }, metadata: nil)
        #expect(
            sameType.tensors.map { Array($0.name.utf8) }
                == ["B", "Z", "_", "a", "a0", "b", "e\u{301}", "f", "ü"].map { Array($0.utf8) })
    }

    @Test func escapesNamesLikeSerde() throws {
        // Names and expected bytes generated with python3: safetensors.numpy.save({name: np.array([i], np.uint8)})
        // (safetensors 0.8.0); each tensor holds its index in this list.
        let names = [
            "a\"b", "c\\d", "\u{1}x", "tab\t", "nl\n", "é/ü", "😀", "\u{7F}", "f", "e\u{301}", "back\u{8}feed\u{C}",
            "cr\r", "\u{1F}",
        ]
        let folder = try TemporaryFolder("writer")
        defer { folder.remove() }
        let path = folder.file("names.safetensors")
        try writeSafetensors(
            names.enumerated().map { (TensorSpec(name: $1, dtype: .u8, shape: [1]), [UInt8($0)]) }, metadata: nil,
            to: path)
        let entry = #"{"dtype":"U8","shape":[1],"data_offsets":"#
        let text =
            #"{"\u0001x":"# + entry + #"[0,1]},"\u001f":"# + entry + #"[1,2]},"a\"b":"# + entry
            + #"[2,3]},"back\bfeed\f":"# + entry
            + #"[3,4]},"c\\d":"# + entry + #"[4,5]},"cr\r":"# + entry + #"[5,6]},"e\#u{301}":"# + entry
            + #"[6,7]},"f":"# + entry
            + #"[7,8]},"nl\n":"# + entry + #"[8,9]},"tab\t":"# + entry + #"[9,10]},"\#u{7F}":"# + entry
            + #"[10,11]},"é/ü":"# + entry
            + #"[11,12]},"😀":"# + entry + #"[12,13]}}     "#
        let bytes = try fileBytes(path)
        #expect(bytes.count == 757)
        #expect(Array(bytes[0..<8]) == lengthPrefix(736))
        #expect(Array(bytes[8..<744]) == Array(text.utf8))
        #expect(Array(bytes[744...]) == [0x02, 0x0c, 0x00, 0x0a, 0x01, 0x0b, 0x09, 0x08, 0x04, 0x03, 0x07, 0x05, 0x06])
        // And they read back under the same names.
        let file = try SafetensorsFile(path: path)
        #expect(Set(file.tensors.keys.map { Array($0.utf8) }) == Set(names.map { Array($0.utf8) }))
    }

    @Test func refusesReservedAndDuplicateNames() throws {
        let reserved = try #require(throws: SafetensorsError.self) {
            try SafetensorsLayout(
                tensors: [TensorSpec(name: "__metadata__", dtype: .u8, shape: [1])], metadata: nil,
                file: "out.safetensors")
        }
        #expect(reserved.rule == .reservedTensorName)
        #expect(reserved.location == "__metadata__")
        #expect(reserved.source == "out.safetensors")
        let duplicate = try #require(throws: SafetensorsError.self) {
            try SafetensorsLayout(
                tensors: [
                    TensorSpec(name: "w", dtype: .u8, shape: [1]), TensorSpec(name: "w", dtype: .f32, shape: [1]),
                ], metadata: nil)
        }
        #expect(duplicate.rule == .duplicateTensorName)
        // Nothing is left behind when the one-call writer refuses.
        let folder = try TemporaryFolder("writer")
        defer { folder.remove() }
        #expect(throws: SafetensorsError.self) {
            try writeSafetensors(
                [(TensorSpec(name: "__metadata__", dtype: .u8, shape: [1]), [0])], metadata: nil,
                to: folder.file("x.safetensors"))
        }
        #expect(try folder.contents() == [])
    }

    // MARK: - Fixtures rewritten byte for byte

    static let fixtureFiles = [
        "llama-tiny-f32-single/model.safetensors",
        "gemma-tiny-bf16-sharded/model-00001-of-00004.safetensors",
        "gemma-tiny-bf16-sharded/model-00002-of-00004.safetensors",
        "gemma-tiny-bf16-sharded/model-00003-of-00004.safetensors",
        "gemma-tiny-bf16-sharded/model-00004-of-00004.safetensors",
        "dtypes/dtypes.safetensors",
    ]

    @Test(arguments: SafetensorsWriterTests.fixtureFiles)
    func rewritesFixtureByteForByte(relative: String) throws {
        let source = FixturePaths.path(relative)
        let file = try SafetensorsFile(path: source)
        // Given in reverse data order, so the writer has to sort them itself.
        let tensors = try file.header.tensors.reversed().map { ($0.spec, try readAll(file, $0)) }
        let folder = try TemporaryFolder("rewrite")
        defer { folder.remove() }
        let target = folder.file("copy.safetensors")
        try writeSafetensors(tensors, metadata: file.header.metadata, to: target)
        let original = try fileBytes(source)
        let written = try fileBytes(target)
        #expect(written.count == original.count)
        #expect(written == original)
        // The layout alone reproduces the header.
        let layout = try SafetensorsLayout(tensors: tensors.map(\.0), metadata: file.header.metadata)
        #expect(layout.headerBytes == Array(original[0..<file.header.dataStart]))
        #expect(try folder.contents() == ["copy.safetensors"])
    }

    // MARK: - Atomic writes

    @Test func atomicFileDroppedWithoutCommitLeavesNothing() throws {
        let folder = try TemporaryFolder("atomic")
        defer { folder.remove() }
        let target = folder.file("x.bin")
        var temporary = ""
        do {
            let file = try AtomicFile(path: target)
            temporary = file.temporaryPath
            try file.write([1, 2, 3])
            #expect(file.bytesWritten == 3)
            // While writing, only the hidden temporary sibling exists.
            #expect(FileManager.default.fileExists(atPath: temporary))
            #expect(!FileManager.default.fileExists(atPath: target))
            #expect(temporary.hasPrefix(folder.path + "/.x.bin.tmp-\(getpid())-"))
            #expect(try folder.contents().count == 1)
        }
        #expect(!FileManager.default.fileExists(atPath: temporary))
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(try folder.contents() == [])
    }

    @Test func safetensorsWriterDroppedWithoutCommitLeavesNothing() throws {
        let folder = try TemporaryFolder("atomic")
        defer { folder.remove() }
        do {
            let layout = try SafetensorsLayout(
                tensors: [TensorSpec(name: "w", dtype: .f32, shape: [4])], metadata: ["format": "pt"])
            let writer = try SafetensorsWriter(path: folder.file("w.safetensors"), layout: layout)
            try float32Bytes([1, 2]).withUnsafeBytes { try writer.append($0) }
            #expect(try folder.contents().count == 1)
        }
        #expect(try folder.contents() == [])
        // An explicit abort, twice, is also clean.
        let layout = try SafetensorsLayout(tensors: [], metadata: nil)
        let writer = try SafetensorsWriter(path: folder.file("e.safetensors"), layout: layout)
        writer.abort()
        writer.abort()
        #expect(try folder.contents() == [])
    }

    @Test func atomicCommitReplacesTheFile() throws {
        let folder = try TemporaryFolder("atomic")
        defer { folder.remove() }
        let target = try folder.write("x.bin", [9, 9, 9, 9, 9])
        let file = try AtomicFile(path: target)
        try file.write([1, 2])
        #expect(try fileBytes(target) == [9, 9, 9, 9, 9])  // the old file is intact until commit
        try file.commit(sync: false)
        file.abort()  // after commit: does nothing
        #expect(try fileBytes(target) == [1, 2])
        #expect(try folder.contents() == ["x.bin"])
        try AtomicFile.write("hello", to: target)
        #expect(try fileBytes(target) == Array("hello".utf8))
        #expect(try folder.contents() == ["x.bin"])
    }

    @Test func atomicFileInMissingFolder() throws {
        let error = try #require(throws: FileIOError.self) { try AtomicFile(path: "/nonexistent-cptests/dir/x.bin") }
        #expect(error.isMissing)
        #expect(error.path == "/nonexistent-cptests/dir/x.bin")
    }
}
