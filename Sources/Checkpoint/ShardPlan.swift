import OrderedCollections
import TensorEngine

/// How a list of tensors is split into shard files, exactly as huggingface_hub's
/// `split_torch_state_dict_into_shards` (used by `save_pretrained`) splits it.
///
/// One greedy pass in the given order: a tensor larger than the maximum gets a shard of its own at once,
/// numbered before the shard still being filled; otherwise, when the current shard plus the tensor would
/// exceed the maximum (strictly), the current shard is closed first. One shard is named `model.safetensors`
/// and needs no index; more are `model-0000i-of-0000N.safetensors`.
package struct ShardPlan: Sendable, Equatable {
    package struct Shard: Sendable, Equatable {
        package let fileName: String
        /// The shard's tensors in split order (the file itself stores them in safetensors order).
        package let tensors: [TensorSpec]
        /// Tensor bytes in this shard.
        package var byteCount: Int { tensors.reduce(0) { $0 + $1.byteCount } }
    }

    package let maxShardSize: Int
    package let shards: [Shard]
    /// Tensor bytes over all shards: the index's `total_size`.
    package let totalSize: Int
    /// The index's `total_parameters`.
    package let totalParameters: Int

    /// Plans `tensors` (split order) into shards of at most `maxShardSize` tensor bytes (larger tensors alone).
    /// `totalParameters` defaults to the tensors' element count.
    package init(tensors: [TensorSpec], maxShardSize: Int, totalParameters: Int? = nil) {
        precondition(maxShardSize > 0)
        let groups = ShardPlan.split(sizes: tensors.map(\.byteCount), maxShardSize: maxShardSize)
        let names = ShardPlan.fileNames(count: groups.count)
        self.maxShardSize = maxShardSize
        self.shards = zip(names, groups).map { name, group in Shard(fileName: name, tensors: group.map { tensors[$0] })
        }
        self.totalSize = tensors.reduce(0) { $0 + $1.byteCount }
        self.totalParameters = totalParameters ?? tensors.reduce(0) { $0 + $1.elementCount }
    }

    /// The greedy split over byte sizes; returns index groups in shard order. Never returns an empty list:
    /// no tensors at all make one empty shard.
    package static func split(sizes: [Int], maxShardSize: Int) -> [[Int]] {
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
    package static func fileNames(count: Int) -> [String] {
        if count == 1 { return ["model.safetensors"] }
        func pad(_ n: Int) -> String {
            let digits = String(n)
            return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
        }
        return (1...max(count, 1)).map { "model-\(pad($0))-of-\(pad(count)).safetensors" }
    }

    package var isSingleFile: Bool { shards.count == 1 }
    package var largestShardBytes: Int { shards.map(\.byteCount).max() ?? 0 }

    /// Tensor name → shard file.
    package var weightMap: OrderedDictionary<String, String> {
        var map = OrderedDictionary<String, String>()
        for shard in shards {
            for tensor in shard.tensors { map[tensor.name] = shard.fileName }
        }
        return map
    }

    /// The index to write, or nil for a single file.
    package var index: ShardIndex? {
        isSingleFile ? nil : ShardIndex(totalSize: totalSize, totalParameters: totalParameters, weightMap: weightMap)
    }
}
