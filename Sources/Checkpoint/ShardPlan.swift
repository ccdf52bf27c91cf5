import OrderedCollections
import TensorEngine

/// How a list of tensors is split into shard files, exactly as huggingface_hub's
/// `split_torch_state_dict_into_shards` (used by `save_pretrained`) splits it.
///
/// One greedy pass in the given order: a tensor larger than the maximum gets a shard of its own at once,
/// numbered before the shard still being filled; otherwise, when the current shard plus the tensor would
/// exceed the maximum (strictly), the current shard is closed first. One shard is named `model.safetensors`
/// and needs no index; more are `model-0000i-of-0000N.safetensors`.
public struct ShardPlan: Sendable, Equatable {
    public struct Shard: Sendable, Equatable {
        public let fileName: String
        /// The shard's tensors in split order (the file itself stores them in safetensors order).
        public let tensors: [TensorSpec]
        /// Tensor bytes in this shard.
        public var byteCount: Int { tensors.reduce(0) { $0 + $1.byteCount } }
    }

    public let maxShardSize: Int
    public let shards: [Shard]
    /// Tensor bytes over all shards: the index's `total_size`.
    public let totalSize: Int
    /// The index's `total_parameters`.
    public let totalParameters: Int

    /// Plans `tensors` (split order) into shards of at most `maxShardSize` tensor bytes (larger tensors alone).
    /// `totalParameters` defaults to the tensors' element count.
    public init(tensors: [TensorSpec], maxShardSize: Int, totalParameters: Int? = nil) {
        precondition(maxShardSize > 0)
        let groups = ShardPlan.split(sizes: tensors.map(\.byteCount), maxShardSize: maxShardSize)
        let names = ShardPlan.fileNames(count: groups.count)
        self.maxShardSize = maxShardSize
        self.shards = zip(names, groups).map { name, group in Shard(fileName: name, tensors: group.map { tensors[$0] }) }
        self.totalSize = tensors.reduce(0) { $0 + $1.byteCount }
        self.totalParameters = totalParameters ?? tensors.reduce(0) { $0 + $1.elementCount }
    }

    /// The greedy split over byte sizes; returns index groups in shard order. Never returns an empty list:
    /// no tensors at all make one empty shard.
    public static func split(sizes: [Int], maxShardSize: Int) -> [[Int]] {
        var shards: [[Int]] = []
        var current: [Int] = []
        var currentSize = 0
        for (index, size) in sizes.enumerated() {
            if size > maxShardSize {
                shards.append([index])
                continue
            }
            if currentSize + size > maxShardSize {
                shards.append(current)
                current = []
                currentSize = 0
            }
            current.append(index)
            currentSize += size
        }
        if !current.isEmpty || shards.isEmpty { shards.append(current) }
        return shards
    }

    /// `model.safetensors` for one shard; `model-00001-of-00004.safetensors` … for more.
    public static func fileNames(count: Int) -> [String] {
        if count == 1 { return ["model.safetensors"] }
        func pad(_ n: Int) -> String {
            let digits = String(n)
            return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
        }
        return (1...max(count, 1)).map { "model-\(pad($0))-of-\(pad(count)).safetensors" }
    }

    public var isSingleFile: Bool { shards.count == 1 }
    public var largestShardBytes: Int { shards.map(\.byteCount).max() ?? 0 }

    /// Tensor name → shard file.
    public var weightMap: OrderedDictionary<String, String> {
        var map = OrderedDictionary<String, String>()
        for shard in shards {
            for tensor in shard.tensors { map[tensor.name] = shard.fileName }
        }
        return map
    }

    /// The index to write, or nil for a single file.
    public var index: ShardIndex? {
        isSingleFile ? nil : ShardIndex(totalSize: totalSize, totalParameters: totalParameters, weightMap: weightMap)
    }
}
