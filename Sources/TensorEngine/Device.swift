/// Where a tensor's bytes live: a (simulated) accelerator, host memory, or an offload folder on disk.
///
/// Ordered fastest first, the order in which accelerate fills devices: `0 < 1 < … < cpu < disk`.
package enum Device: Hashable, Sendable, Comparable, CustomStringConvertible {
    case accelerator(Int)
    case cpu
    case disk

    /// accelerate's spelling: an integer index, `"cpu"` or `"disk"`.
    package var description: String {
        switch self {
        case .accelerator(let index): return String(index)
        case .cpu: return "cpu"
        case .disk: return "disk"
        }
    }

    /// True for devices whose bytes are host RAM in this tool: the CPU and the simulated accelerators.
    package var isResidentInRAM: Bool { self != .disk }

    /// Parses `0`, `1`, …, `cpu`, `disk` (also `cuda:0` / `npu:0`-style and `"0"` as accelerate accepts).
    package init?(parsing text: String) {
        switch text {
        case "cpu": self = .cpu
        case "disk": self = .disk
        default:
            var digits = Substring(text)
            if let colon = text.firstIndex(of: ":"),
                ["cuda", "xpu", "npu", "mps", "mlu", "musa"].contains(String(text[..<colon]))
            {
                digits = text[text.index(after: colon)...]
            }
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let index = Int(digits),
                index < 1 << 20
            else {
                return nil
            }
            self = .accelerator(index)
        }
    }

    package static func < (lhs: Device, rhs: Device) -> Bool {
        func rank(_ d: Device) -> (Int, Int) {
            switch d {
            case .accelerator(let i): return (0, i)
            case .cpu: return (1, 0)
            case .disk: return (2, 0)
            }
        }
        return rank(lhs) < rank(rhs)
    }
}

/// A device in JSON is accelerate's name as a string: `"0"`, `"1"`, …, `"cpu"`, `"disk"`.
extension Device: Codable {
    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let device = Device(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a device (an accelerator index, \"cpu\" or \"disk\")"
            )
        }
        self = device
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
