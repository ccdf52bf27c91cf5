import TensorEngine

/// A tensor's name, element type and shape: everything but its bytes.
package struct TensorSpec: Sendable, Hashable {
    package let name: String
    package let dtype: DType
    package let shape: [Int]

    package init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    package var elementCount: Int { TensorEngine.elementCount(of: shape) ?? 0 }
    package var byteCount: Int { Tensor.byteCount(dtype: dtype, shape: shape) }
}

/// A tensor as a safetensors file stores it: its spec and its byte range in the file's data buffer.
package struct StoredTensor: Sendable, Hashable {
    package let spec: TensorSpec
    /// Offsets relative to the start of the data buffer: `[begin, end)`.
    package let begin: Int
    package let end: Int

    package var name: String { spec.name }
    package var dtype: DType { spec.dtype }
    package var shape: [Int] { spec.shape }
    package var byteCount: Int { end - begin }
}
