import Checkpoint
import Foundation
import OrderedCollections
import TensorEngine
import Testing

/// A tiny Llama-shaped model (about 5.5M parameters, 11 MB in bfloat16): runs take well under a second each.
package let tinyModelConfig = #"""
    {"model_type": "llama", "hidden_size": 256, "intermediate_size": 688, "num_attention_heads": 4, "num_key_value_heads": 2,
     "num_hidden_layers": 2, "vocab_size": 8000, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}
    """#

/// A scenario file for the tiny model.
package func tinyScenario(
    name: String = "tiny", runs: String = #"[{"strategy": "naive"}, {"strategy": "low-memory"}]"#, extra: String = ""
) -> String {
    #"{"name": "\#(name)", "model": {"config": \#(tinyModelConfig)}, "checkpoint": {"dtype": "bfloat16", "max_shard_size": "4MB"}, "scale": 1, "runs": \#(runs)\#(extra)}"#
}

/// The Python interpreter the real-loader tests use: `BIGMODEL_BENCH_PYTHON` (scripts/setup --test sets it to
/// the cached virtual environment), else python3; each test is skipped, saying why, when it lacks a package.
package enum TestPython {
    package static let path: String = ProcessInfo.processInfo.environment["BIGMODEL_BENCH_PYTHON"] ?? "python3"

    package static func imports(_ modules: String) -> Bool {
        runTool(path, ["-c", "import \(modules)"])?.status == 0
    }

    package static let hasNumpy: Bool = {
        let ok = imports("numpy")
        if !ok { print("SubjectTests: SKIPPED the command-subject test: \(path) cannot import numpy") }
        return ok
    }()

    package static let hasTransformers: Bool = {
        let ok = imports("torch, transformers, safetensors, accelerate")
        if !ok {
            print(
                "SubjectTests: SKIPPED the transformers tests: \(path) cannot import torch, transformers, safetensors, accelerate (run scripts/setup --test)"
            )
        }
        return ok
    }()

    package static let hasFastLoaders: Bool = {
        let ok = imports("torch, safetensors, runai_model_streamer, fastsafetensors")
        if !ok {
            print(
                "FastLoaderTests: SKIPPED: \(path) cannot import torch, safetensors, runai_model_streamer, fastsafetensors (run scripts/setup --test)"
            )
        }
        return ok
    }()
}

/// Writes in-memory tensors with `SafetensorsWriter.write`, keeping each buffer alive for the call.
package func writeSafetensors(
    _ tensors: [(TensorSpec, [UInt8])], metadata: OrderedDictionary<String, String>?, to path: String
)
    throws
{
    let buffers = tensors.map { _, bytes -> UnsafeMutableRawBufferPointer in
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        buffer.copyBytes(from: bytes)
        return buffer
    }
    defer { for buffer in buffers { buffer.deallocate() } }
    try SafetensorsWriter.write(
        zip(tensors, buffers).map { (spec: $0.0.0, bytes: UnsafeRawBufferPointer($0.1)) }, metadata: metadata, to: path)
}

/// Gives `body` stable raw buffers over each array.
package func withArrays<R>(_ arrays: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
    var pointers: [UnsafeMutableRawBufferPointer] = []
    defer { for pointer in pointers { pointer.deallocate() } }
    for array in arrays {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(array.count, 1), alignment: 16)
        buffer.copyBytes(from: array)
        pointers.append(buffer)
    }
    return try body(
        zip(pointers, arrays).map { UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer($0.0)[0..<$0.1.count]) })

}
