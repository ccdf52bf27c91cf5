import Crypto

/// A tensor: element type, shape, and the storage holding its row-major little-endian bytes.
package struct Tensor: Sendable {
    package let dtype: DType
    package let shape: [Int]
    package let storage: TensorStorage

    package init(dtype: DType, shape: [Int], storage: TensorStorage) {
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    package var elementCount: Int { TensorEngine.elementCount(of: shape) ?? 0 }
    package var byteCount: Int { storage.byteCount }
    package var isMeta: Bool { storage.kind == .meta }

    /// A storage-less tensor: the meta skeleton.
    package static func meta(dtype: DType, shape: [Int], device: Device = .cpu) -> Tensor {
        Tensor(
            dtype: dtype, shape: shape, storage: .meta(byteCount: byteCount(dtype: dtype, shape: shape), device: device)
        )
    }

    /// An owned, uninitialised tensor accounted in `ledger`.
    package static func empty(
        dtype: DType, shape: [Int], device: Device = .cpu, ledger: MemoryLedger, allocator: HostAllocator = .standard
    ) throws -> Tensor {
        let storage = try TensorStorage.allocate(
            byteCount: byteCount(dtype: dtype, shape: shape), device: device, ledger: ledger, allocator: allocator)
        return Tensor(dtype: dtype, shape: shape, storage: storage)
    }

    /// Bytes of a tensor with this dtype and shape. Shapes reaching here were validated (checkpoint reader,
    /// model config), so overflow is a programming error.
    package static func byteCount(dtype: DType, shape: [Int]) -> Int {
        guard let count = TensorEngine.elementCount(of: shape), let bytes = dtype.byteCount(elements: count) else {
            preconditionFailure("unvalidated shape \(shape) for \(dtype)")
        }
        return bytes
    }

    /// SHA-256 of the raw bytes as lowercase hex (the digest `expected.json` files use).
    package func sha256() -> String {
        precondition(!isMeta, "a meta tensor has no bytes to digest")
        return Digest.sha256Hex(storage.bytes)
    }
}

/// SHA-256 over raw bytes (swift-crypto), as lowercase hex.
package enum Digest {
    package static func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
        hex(SHA256.hash(data: bytes))
    }

    package static func sha256Hex(_ bytes: [UInt8]) -> String {
        hex(SHA256.hash(data: bytes))
    }

    /// Incremental hashing, for digests of data that is streamed rather than held.
    package struct Hasher: Sendable {
        private var inner = SHA256()
        package init() {}
        package mutating func update(_ bytes: UnsafeRawBufferPointer) { inner.update(bufferPointer: bytes) }
        package consuming func finalizeHex() -> String { Digest.hex(inner.finalize()) }
    }

    static func hex(_ digest: SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
