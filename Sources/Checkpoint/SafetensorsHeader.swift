import OSLayer
import OrderedCollections
import StrictJSON
import TensorEngine

/// A validated safetensors header: the one place where untrusted header bytes become trusted values.
///
/// The checks follow the reference implementation (`safetensors` 0.8.0, `tensor.rs`) rule by rule and in its
/// order, each failure a distinct `SafetensorsRule`:
///
///  1. file shorter than 8 bytes → HeaderTooSmall
///  2. N > 100,000,000 → HeaderTooLarge (checked before the file length)
///  3. 8 + N overflows or exceeds the file → InvalidHeaderLength
///  4. header not UTF-8 → InvalidHeader
///  5. not strict JSON of the required shape → InvalidHeaderDeserialization
///     (duplicate tensor names → DuplicateTensorName, an addition: the reference keeps the last silently)
///  6. tensors sorted by (begin, end) must tile the buffer from 0 → InvalidOffset(name)
///  7. element and bit counts overflow → ValidationOverflow
///  8. bits not a multiple of 8 → MisalignedSlice
///  9. end − begin ≠ bytes the shape needs → TensorInvalidInfo
/// 10. the last tensor must end exactly at the end of the file → MetadataIncompleteBuffer
///
/// Steps 6–9 run tensor by tensor in data order, as the reference does. Nothing is allocated in proportion to
/// a claimed size: the header is read only after step 3 has proved that many bytes exist.
///
/// Deliberately not required (older writers produced all of them): a leading `{` right after the length,
/// an 8-aligned N, aligned tensor offsets.
package struct SafetensorsHeader: Sendable, Equatable {
    /// The reference's limit on N.
    package static let maxHeaderByteCount = 100_000_000

    /// N: the JSON header's byte length, padding included.
    package let headerByteCount: Int
    /// `__metadata__`, in the header's order; nil when absent or `null`.
    package let metadata: OrderedDictionary<String, String>?
    /// The tensors in data order (by begin offset).
    package let tensors: [StoredTensor]

    /// Absolute file offset of the data buffer: 8 + N.
    package var dataStart: Int { 8 + headerByteCount }
    /// Bytes in the data buffer: the sum of all tensors' bytes.
    package var dataByteCount: Int { tensors.last?.end ?? 0 }

    /// Steps 1–3: validates the 8-byte prefix against the file size and returns N.
    package static func headerByteCount(prefix: some Collection<UInt8>, fileSize: Int, file: String)
        throws(SafetensorsError) -> Int
    {
        guard prefix.count >= 8, fileSize >= 8 else {
            throw SafetensorsError(
                .headerTooSmall, source: file, "the file has \(fileSize) bytes, fewer than the 8-byte header length")
        }
        var n: UInt64 = 0
        for (i, byte) in prefix.prefix(8).enumerated() { n |= UInt64(byte) << (8 * UInt64(i)) }
        guard n <= UInt64(maxHeaderByteCount) else {
            throw SafetensorsError(
                .headerTooLarge, source: file,
                "header length \(n) exceeds the limit of \(maxHeaderByteCount) bytes" + textHint(prefix))
        }
        let headerEnd = 8 + Int(n)  // cannot overflow: n ≤ 10^8
        guard headerEnd <= fileSize else {
            throw SafetensorsError(
                .invalidHeaderLength, source: file,
                "header length \(n) runs past the end of the file (8 + \(n) > \(fileSize) bytes)" + textHint(prefix))
        }
        return Int(n)
    }

    /// When a length prefix that breaks the rules is really text (a README, a JSON file, a Git LFS pointer
    /// given where a `.safetensors` file belongs), the message says so: the number alone is no clue.
    static func textHint(_ prefix: some Collection<UInt8>) -> String {
        let bytes = Array(prefix.prefix(8))
        guard bytes.count == 8,
            bytes.allSatisfy({ (0x20...0x7E).contains($0) || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D })
        else { return "" }
        return
            "; the file begins with the text \"\(MessageText.oneLine(String(decoding: bytes, as: UTF8.self)))\": not a safetensors file"
    }

    /// Steps 4–10: validates the header bytes (exactly N of them) of a file of `fileSize` bytes.
    package static func parse(headerBytes: [UInt8], fileSize: Int, file: String) throws(SafetensorsError)
        -> SafetensorsHeader
    {
        let (metadata, raw) = try parseDocument(headerBytes, file: file)
        let (tensors, end) = try validateLayout(raw, file: file)
        // 10. The buffer must end exactly at the end of the file.
        let available = fileSize - 8 - headerBytes.count
        guard available >= 0 else {
            throw SafetensorsError(
                .invalidHeaderLength, source: file,
                "8 + \(headerBytes.count) header bytes exceed the file's \(fileSize)")
        }
        guard end == UInt64(available) else {
            let detail =
                end > UInt64(available)
                ? "the tensors need \(end) data bytes but the file holds \(available)"
                : "\(UInt64(available) - end) bytes follow the last tensor (trailing data is not allowed)"
            throw SafetensorsError(.metadataIncompleteBuffer, source: file, detail)
        }
        return SafetensorsHeader(headerByteCount: headerBytes.count, metadata: metadata, tensors: tensors)
    }

    /// Steps 4–5: UTF-8, then strict JSON of the required shape: the metadata and the tensor entries.
    static func parseDocument(_ headerBytes: [UInt8], file: String) throws(SafetensorsError) -> (
        OrderedDictionary<String, String>?, [RawEntry]
    ) {
        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw SafetensorsError(.invalidHeader, source: file, "the header is not valid UTF-8")
        }
        let document: JSONValue
        do {
            document = try JSONParser().parse(headerBytes)
        } catch {
            if error.rule == .duplicateKey, error.depth == 1, let key = error.key, key != "__metadata__" {
                throw SafetensorsError(
                    .duplicateTensorName, source: file, location: key, "the name appears twice in the header")
            }
            throw SafetensorsError(.invalidHeaderDeserialization, source: file, "header JSON: \(error)")
        }
        guard case .object(let object) = document else {
            throw SafetensorsError(
                .invalidHeaderDeserialization, source: file, "the header is \(document.typeName), not an object")
        }
        var metadata: OrderedDictionary<String, String>?
        var raw: [RawEntry] = []
        raw.reserveCapacity(object.count)
        for (name, value) in object {
            if name == "__metadata__" {
                metadata = try parseMetadata(value, file: file)
            } else {
                raw.append(try parseEntry(name: name, value: value, file: file))
            }
        }
        return (metadata, raw)
    }

    /// Steps 6–9, tensor by tensor in data order: contiguous offsets from 0, no overflow, whole bytes, sizes that
    /// match. Returns the tensors and where the last one ends.
    static func validateLayout(_ entries: [RawEntry], file: String) throws(SafetensorsError) -> ([StoredTensor], UInt64)
    {
        let raw = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expectedBegin: UInt64 = 0
        var tensors: [StoredTensor] = []
        tensors.reserveCapacity(raw.count)
        for entry in raw {
            guard entry.begin == expectedBegin, entry.end >= entry.begin else {
                let why =
                    entry.end < entry.begin
                    ? "data_offsets [\(entry.begin), \(entry.end)] end before they begin"
                    : entry.begin < expectedBegin
                        ? "data_offsets [\(entry.begin), \(entry.end)] overlap the previous tensor, which ends at \(expectedBegin)"
                        : "data_offsets [\(entry.begin), \(entry.end)] leave a gap after byte \(expectedBegin)"
                throw SafetensorsError(.invalidOffset, source: file, location: entry.name, why)
            }
            expectedBegin = entry.end
            tensors.append(try validateSize(entry, file: file))
        }
        return (tensors, expectedBegin)
    }

    /// Steps 7–9 for one entry: element and bit counts without overflow, whole bytes, the byte range's length.
    static func validateSize(_ entry: RawEntry, file: String) throws(SafetensorsError) -> StoredTensor {
        var elements: UInt64 = 1
        for dim in entry.shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
            guard !overflow else {
                throw SafetensorsError(
                    .validationOverflow, source: file, location: entry.name,
                    "the element count of shape \(entry.shape) overflows 64 bits")
            }
            elements = product
        }
        let (bits, bitOverflow) = elements.multipliedReportingOverflow(by: UInt64(entry.dtype.bitWidth))
        guard !bitOverflow else {
            throw SafetensorsError(
                .validationOverflow, source: file, location: entry.name,
                "\(elements) elements of \(entry.dtype) overflow 64 bits")
        }
        guard bits % 8 == 0 else {
            throw SafetensorsError(
                .misalignedSlice, source: file, location: entry.name,
                "\(elements) elements of \(entry.dtype) are \(bits) bits, not whole bytes")
        }
        guard entry.end - entry.begin == bits / 8 else {
            throw SafetensorsError(
                .tensorInvalidInfo, source: file, location: entry.name,
                "data_offsets cover \(entry.end - entry.begin) bytes but shape \(entry.shape) of \(entry.dtype) needs \(bits / 8)"
            )
        }
        // This reader keeps dimensions as Int; a dimension beyond Int.max can only pass the checks above
        // beside a zero dimension, and no real checkpoint has one.
        guard entry.shape.allSatisfy({ $0 <= UInt64(Int.max) }) else {
            throw SafetensorsError(
                .validationOverflow, source: file, location: entry.name,
                "a dimension of \(entry.shape) exceeds \(Int.max)")
        }
        // Likewise the element count is computed in Int downstream (`TensorSpec.byteCount`, left to right):
        // a zero-element shape such as [3, 2^62, 0] passes the u64 checks above but its running product
        // overflows Int, which would trap later rather than be refused here.
        guard TensorEngine.elementCount(of: entry.shape.map { Int($0) }) != nil else {
            throw SafetensorsError(
                .validationOverflow, source: file, location: entry.name,
                "the element count of shape \(entry.shape) overflows \(Int.max) along the way")
        }
        // end ≤ fileSize is proved by step 10; until then, keep offsets within Int range.
        guard entry.end <= UInt64(Int.max) else {
            throw SafetensorsError(
                .metadataIncompleteBuffer, source: file, location: entry.name,
                "data_offsets end \(entry.end) lies beyond the file")
        }
        return StoredTensor(
            spec: TensorSpec(name: entry.name, dtype: entry.dtype, shape: entry.shape.map { Int($0) }),
            begin: Int(entry.begin), end: Int(entry.end))
    }

    struct RawEntry {
        let name: String
        let dtype: DType
        let shape: [UInt64]
        let begin: UInt64
        let end: UInt64
    }

    private static func deserialization(_ file: String, _ name: String?, _ detail: String) -> SafetensorsError {
        SafetensorsError(.invalidHeaderDeserialization, source: file, location: name, detail)
    }

    private static func parseMetadata(_ value: JSONValue, file: String) throws(SafetensorsError) -> OrderedDictionary<
        String, String
    >? {
        switch value {
        case .null:
            return nil
        case .object(let object):
            var out = OrderedDictionary<String, String>()
            for (key, item) in object {
                guard case .string(let text) = item else {
                    throw deserialization(
                        file, nil, "__metadata__ value for '\(key)' is \(item.typeName); only strings are allowed")
                }
                out[key] = text
            }
            return out
        default:
            throw deserialization(file, nil, "__metadata__ is \(value.typeName); it must be an object of strings")
        }
    }

    private static func parseEntry(name: String, value: JSONValue, file: String) throws(SafetensorsError) -> RawEntry {
        guard case .object(let fields) = value else {
            throw deserialization(
                file, name, "the entry is \(value.typeName), not an object with dtype, shape and data_offsets")
        }
        guard let dtypeValue = fields["dtype"] else { throw deserialization(file, name, "missing field 'dtype'") }
        guard case .string(let dtypeName) = dtypeValue else {
            throw deserialization(file, name, "'dtype' is \(dtypeValue.typeName), not a string")
        }
        guard let dtype = DType(safetensorsName: dtypeName) else {
            throw deserialization(file, name, "unknown dtype '\(dtypeName)'")
        }
        guard let shapeValue = fields["shape"] else { throw deserialization(file, name, "missing field 'shape'") }
        guard case .array(let dims) = shapeValue else {
            throw deserialization(file, name, "'shape' is \(shapeValue.typeName), not an array")
        }
        var shape: [UInt64] = []
        shape.reserveCapacity(dims.count)
        for dim in dims {
            guard case .number(let number) = dim, let value = number.uint64Value else {
                throw deserialization(file, name, "shape entry \(literal(dim)) is not an unsigned 64-bit integer")
            }
            shape.append(value)
        }
        guard let offsetsValue = fields["data_offsets"] else {
            throw deserialization(file, name, "missing field 'data_offsets'")
        }
        guard case .array(let offsets) = offsetsValue, offsets.count == 2 else {
            throw deserialization(file, name, "'data_offsets' must be an array of exactly two integers")
        }
        var bounds: [UInt64] = []
        for offset in offsets {
            guard case .number(let number) = offset, let value = number.uint64Value else {
                throw deserialization(
                    file, name, "data_offsets entry \(literal(offset)) is not an unsigned 64-bit integer")
            }
            bounds.append(value)
        }
        return RawEntry(name: name, dtype: dtype, shape: shape, begin: bounds[0], end: bounds[1])
    }

    private static func literal(_ value: JSONValue) -> String {
        if case .number(let n) = value { return n.literal }
        return value.typeName
    }
}
