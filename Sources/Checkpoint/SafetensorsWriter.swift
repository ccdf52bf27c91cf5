import OSLayer
import OrderedCollections
import StrictJSON
import TensorEngine

/// The exact bytes of a safetensors header and where each tensor goes, as the reference writer lays them out.
///
/// Byte-identical to safetensors' `serialize`: tensors sorted by dtype rank (highest first) then name
/// (bytewise); compact JSON with `__metadata__` first and fields in the order dtype, shape, data_offsets;
/// serde's string escaping; the header padded with spaces to a multiple of 8. One difference is inherent:
/// the reference holds metadata in a Rust `HashMap`, whose order is random for two or more keys; this writer
/// keeps the order it is given.
package struct SafetensorsLayout: Sendable, Equatable {
    /// The 8-byte length followed by the padded JSON header.
    package let headerBytes: [UInt8]
    /// The tensors in data order, with their offsets.
    package let tensors: [StoredTensor]

    package var dataByteCount: Int { tensors.last?.end ?? 0 }
    package var fileByteCount: Int { headerBytes.count + dataByteCount }

    /// Lays out `tensors` (any order) with optional metadata (nil omits `__metadata__`; an empty map writes
    /// `"__metadata__":{}`). `file` names the destination in errors.
    package init(tensors specs: [TensorSpec], metadata: OrderedDictionary<String, String>?, file: String = "<memory>")
        throws(SafetensorsError)
    {
        var seen = Set<String>()
        for spec in specs {
            if spec.name == "__metadata__" {
                throw SafetensorsError(
                    .reservedTensorName, source: file, location: spec.name,
                    "'__metadata__' is reserved for the metadata map")
            }
            guard seen.insert(spec.name).inserted else {
                throw SafetensorsError(
                    .duplicateTensorName, source: file, location: spec.name,
                    "two tensors with this name were given to the writer")
            }
        }
        let ordered = specs.sorted { a, b in
            if a.dtype.writeRank != b.dtype.writeRank { return a.dtype.writeRank > b.dtype.writeRank }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var object = OrderedDictionary<String, JSONValue>()
        if let metadata {
            object["__metadata__"] = .object(
                OrderedDictionary(uniqueKeysWithValues: metadata.map { ($0.key, JSONValue.string($0.value)) }))
        }
        var offset = 0
        var placed: [StoredTensor] = []
        placed.reserveCapacity(ordered.count)
        for spec in ordered {
            let end = offset + spec.byteCount
            object[spec.name] = .object([
                "dtype": .string(spec.dtype.safetensorsName),
                "shape": .array(spec.shape.map { JSONValue($0) }),
                "data_offsets": .array([JSONValue(offset), JSONValue(end)]),
            ])
            placed.append(StoredTensor(spec: spec, begin: offset, end: end))
            offset = end
        }
        var json = JSONWriter.compact.bytes(.object(object))
        json.append(contentsOf: repeatElement(0x20, count: (8 - json.count % 8) % 8))
        var header: [UInt8] = []
        header.reserveCapacity(8 + json.count)
        var n = UInt64(json.count)
        for _ in 0..<8 {
            header.append(UInt8(n & 0xFF))
            n >>= 8
        }
        header.append(contentsOf: json)
        self.headerBytes = header
        self.tensors = placed
    }
}

/// Writes one safetensors file: the header, then the tensors' bytes streamed in data order, into a
/// temporary file that is renamed into place only when every byte has been written.
package final class SafetensorsWriter {
    package let layout: SafetensorsLayout
    private let file: AtomicFile

    package init(path: String, layout: SafetensorsLayout) throws {
        self.layout = layout
        self.file = try AtomicFile(path: path)
        try file.write(layout.headerBytes)
    }

    package var path: String { file.path }

    /// Appends the next bytes of the data buffer (tensors in `layout.tensors` order, back to back).
    package func append(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(file.bytesWritten + bytes.count <= layout.fileByteCount, "more data than the layout holds")
        try file.write(bytes)
    }

    /// Renames the file into place; every tensor byte must have been appended.
    package func commit(sync: Bool = true) throws {
        precondition(
            file.bytesWritten == layout.fileByteCount, "\(layout.fileByteCount - file.bytesWritten) data bytes missing")
        try file.commit(sync: sync)
    }

    package func abort() { file.abort() }

    /// Writes in-memory tensors to `path` in one call.
    package static func write(
        _ tensors: [(spec: TensorSpec, bytes: UnsafeRawBufferPointer)], metadata: OrderedDictionary<String, String>?,
        to path: String
    ) throws {
        let layout = try SafetensorsLayout(tensors: tensors.map(\.spec), metadata: metadata, file: path)
        let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.spec.name, $0.bytes) })
        let writer = try SafetensorsWriter(path: path, layout: layout)
        for tensor in layout.tensors {
            guard let bytes = byName[tensor.name], bytes.count == tensor.byteCount else {
                writer.abort()
                preconditionFailure(
                    "tensor \(tensor.name) has \(byName[tensor.name]?.count ?? -1) bytes, its spec needs \(tensor.byteCount)"
                )
            }
            try writer.append(bytes)
        }
        try writer.commit()
    }
}
