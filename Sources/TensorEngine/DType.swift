/// Every element type a safetensors file can declare.
///
/// The raw value is the exact, case-sensitive string of the safetensors header. `torchName` is what the CLI
/// accepts and prints (`--dtype bfloat16`), as `torch_dtype` / `dtype` in a config.json spells it.
package enum DType: String, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case i16 = "I16"
    case u16 = "U16"
    case i32 = "I32"
    case u32 = "U32"
    case i64 = "I64"
    case u64 = "U64"
    case f16 = "F16"
    case bf16 = "BF16"
    case f32 = "F32"
    case f64 = "F64"
    case c64 = "C64"
    case f8E4M3 = "F8_E4M3"
    case f8E5M2 = "F8_E5M2"
    case f8E8M0 = "F8_E8M0"
    case f8E4M3FNUZ = "F8_E4M3FNUZ"
    case f8E5M2FNUZ = "F8_E5M2FNUZ"
    case f4 = "F4"
    case f6E2M3 = "F6_E2M3"
    case f6E3M2 = "F6_E3M2"

    /// The string written in a safetensors header.
    package var safetensorsName: String { rawValue }

    package var description: String { rawValue }

    /// Bits per element. F4 and F6 are sub-byte: a tensor's element count × bits must be a multiple of 8.
    package var bitWidth: Int {
        switch self {
        case .f4: return 4
        case .f6E2M3, .f6E3M2: return 6
        case .bool, .u8, .i8, .f8E4M3, .f8E5M2, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ: return 8
        case .i16, .u16, .f16, .bf16: return 16
        case .i32, .u32, .f32: return 32
        case .i64, .u64, .f64, .c64: return 64
        }
    }

    /// Bytes per element for byte-sized types; nil for the sub-byte F4 and F6 types.
    package var byteWidth: Int? { bitWidth % 8 == 0 ? bitWidth / 8 : nil }

    /// The name torch gives the type (`torch.bfloat16` → `bfloat16`).
    package var torchName: String {
        switch self {
        case .bool: return "bool"
        case .u8: return "uint8"
        case .i8: return "int8"
        case .i16: return "int16"
        case .u16: return "uint16"
        case .i32: return "int32"
        case .u32: return "uint32"
        case .i64: return "int64"
        case .u64: return "uint64"
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        case .f32: return "float32"
        case .f64: return "float64"
        case .c64: return "complex64"
        case .f8E4M3: return "float8_e4m3fn"
        case .f8E5M2: return "float8_e5m2"
        case .f8E8M0: return "float8_e8m0fnu"
        case .f8E4M3FNUZ: return "float8_e4m3fnuz"
        case .f8E5M2FNUZ: return "float8_e5m2fnuz"
        case .f4: return "float4_e2m1fn_x2"
        case .f6E2M3: return "float6_e2m3fn"
        case .f6E3M2: return "float6_e3m2fn"
        }
    }

    /// The floating types the engine converts between. Other float formats (F8, F6, F4) are loaded as
    /// stored and never cast: torch itself refuses most arithmetic on them, and no loading path in the
    /// Hugging Face stack upcasts a quantised checkpoint implicitly.
    package var isConvertible: Bool {
        switch self {
        case .f16, .bf16, .f32, .f64: return true
        default: return false
        }
    }

    /// Position in safetensors' write order (`Dtype`'s declaration order): the writer sorts by this rank,
    /// highest first, so 8-byte types lead and every tensor stays naturally aligned.
    package var writeRank: Int {
        switch self {
        case .bool: return 0
        case .f4: return 1
        case .f6E2M3: return 2
        case .f6E3M2: return 3
        case .u8: return 4
        case .i8: return 5
        case .f8E5M2: return 6
        case .f8E4M3: return 7
        case .f8E8M0: return 8
        case .f8E4M3FNUZ: return 9
        case .f8E5M2FNUZ: return 10
        case .i16: return 11
        case .u16: return 12
        case .f16: return 13
        case .bf16: return 14
        case .i32: return 15
        case .u32: return 16
        case .f32: return 17
        case .c64: return 18
        case .f64: return 19
        case .i64: return 20
        case .u64: return 21
        }
    }

    /// Parses the exact safetensors string (`"BF16"`).
    package init?(safetensorsName: String) {
        self.init(rawValue: safetensorsName)
    }

    /// Parses a torch-style name as written on the command line or in config.json: `bfloat16`,
    /// `torch.bfloat16`, and torch's aliases `half`, `float`, `double`, `bf16`, `fp16`, `fp32`, `fp64`.
    /// Case-insensitive.
    package init?(torchName: String) {
        var name = torchName.lowercased()
        if name.hasPrefix("torch.") { name.removeFirst("torch.".count) }
        switch name {
        case "half", "fp16": self = .f16
        case "bf16": self = .bf16
        case "float", "fp32": self = .f32
        case "double", "fp64": self = .f64
        case "long": self = .i64
        case "int": self = .i32
        case "short": self = .i16
        default:
            guard let match = DType.allCases.first(where: { $0.torchName == name }) else { return nil }
            self = match
        }
    }

    /// The torch names the CLI accepts for a cast target, for error messages.
    package static let convertibleTorchNames = "float16, bfloat16, float32, float64"

    /// Bytes taken by `elementCount` elements, or nil when the count overflows or is not a whole number of
    /// bytes (safetensors' ValidationOverflow and MisalignedSlice).
    package func byteCount(elements: Int) -> Int? {
        let (bits, overflow) = elements.multipliedReportingOverflow(by: bitWidth)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }
}

/// The product of a shape's dimensions with overflow checks; nil when it overflows `Int`.
package func elementCount(of shape: [Int]) -> Int? {
    var count = 1
    for dim in shape {
        guard dim >= 0 else { return nil }
        let (product, overflow) = count.multipliedReportingOverflow(by: dim)
        if overflow { return nil }
        count = product
    }
    return count
}

/// A dtype in JSON (results, the child protocol) is its torch name: `"bfloat16"`, `"float32"`, `"int64"`.
extension DType: Codable {
    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let dtype = DType(torchName: name) ?? DType(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(name)' is not a dtype name such as \"bfloat16\"")
        }
        self = dtype
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(torchName)
    }
}
