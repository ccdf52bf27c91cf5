/// The malformed-input corpus (`Tests/Fixtures/malformed`, from `../shared/fixtures`): the rule each file breaks.
package enum MalformedFixtures {
    /// What the reader reports for each malformed fixture, following the reference's order of checks.
    package static let rules: [String: String] = [
        // 0 bytes: step 1.
        "empty.safetensors": "HeaderTooSmall",
        // N = 4096 in a 10-byte file: step 3 (N is under the step-2 limit).
        "header-past-eof.safetensors": "InvalidHeaderLength",
        // N = 100,000,001: step 2, before the file length is looked at.
        "header-too-large.safetensors": "HeaderTooLarge",
        // `{"w": nope}`: step 5.
        "not-json.safetensors": "InvalidHeaderDeserialization",
        // F32 [2,2] with data_offsets [0,32] in a 16-byte buffer: step 9 (32 bytes ≠ 16 needed) runs for the
        // tensor before step 10 compares the buffer with the file.
        "offsets-past-buffer.safetensors": "TensorInvalidInfo",
        // a [0,16], b [8,24]: b begins before a ends, step 6.
        "overlap.safetensors": "InvalidOffset",
        // shape [2, 2^64 − 2]: the element count overflows u64, step 7 (offsets [0,16] pass step 6 first).
        "shape-overflow.safetensors": "ValidationOverflow",
        // F32 [3,2] (24 bytes) in [0,16]: step 9.
        "size-mismatch.safetensors": "TensorInvalidInfo",
        // The only tensor is consistent but 5 bytes follow it: step 10.
        "trailing-bytes.safetensors": "MetadataIncompleteBuffer",
        // dtype "F12": step 5.
        "unknown-dtype.safetensors": "InvalidHeaderDeserialization",
        // The index maps "b" to model-00002-of-00002.safetensors, which does not exist.
        "index-missing-shard/": "MissingShard",
        // The index maps "a" to "../outside.safetensors": refused by name before looking for the file.
        "index-path-traversal/": "ShardOutsideFolder",
    ]
}
