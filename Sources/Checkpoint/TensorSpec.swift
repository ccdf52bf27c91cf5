import TensorEngine

/// A tensor's name, element type and shape: everything but its bytes.
public struct TensorSpec: Sendable, Hashable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    public var elementCount: Int { TensorEngine.elementCount(of: shape) ?? 0 }
    public var byteCount: Int { Tensor.byteCount(dtype: dtype, shape: shape) }
}

/// A tensor as a safetensors file stores it: its spec and its byte range in the file's data buffer.
public struct StoredTensor: Sendable, Hashable {
    public let spec: TensorSpec
    /// Offsets relative to the start of the data buffer: `[begin, end)`.
    public let begin: Int
    public let end: Int

    public var name: String { spec.name }
    public var dtype: DType { spec.dtype }
    public var shape: [Int] { spec.shape }
    public var byteCount: Int { end - begin }
}
