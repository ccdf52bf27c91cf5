/// Element-type conversion between F64, F32, F16 and BF16. (Being implemented.)
public enum DTypeConversion {
    public static func isSupported(from source: DType, to destination: DType) -> Bool {
        source == destination || (source.isConvertible && destination.isConvertible)
    }

    /// Converts every element of `source` (of type `from`) into `destination` (of type `to`).
    /// Both buffers hold the same number of elements. Large inputs are split across threads.
    public static func convert(
        _ source: UnsafeRawBufferPointer, from: DType,
        into destination: UnsafeMutableRawBufferPointer, to: DType,
        threads: Int? = nil
    ) {
        fatalError("not implemented")
    }
}
