"""A loader that keeps two copies: every shard read whole into memory (the "state dict"), then every tensor
copied into fresh arrays (the "model"), then the state dict freed — the naive path, in ~30 lines of numpy.

    {"strategy": "naive", "subject": {"command": ["python3", "examples/two_copy_loader.py", "{checkpoint}"]}}

Claimed as naive (model + checkpoint) it passes; claimed as low-memory (only the model) it fails, which is
the point: bigmodel-bench checks the claim, whatever the loader. The safetensors layout (8-byte length, JSON
header, data) is read directly so that every dtype works, bfloat16 included, which numpy cannot name.
"""
import glob
import json
import os
import struct
import sys

import numpy as np

folder = sys.argv[1]
shards = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
state = {}                                   # copy 1: the raw bytes of every shard, as a state dict holds them
for path in shards:
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    for name, entry in header.items():
        if name != "__metadata__":
            begin, end = entry["data_offsets"]
            state[name] = np.frombuffer(data, dtype=np.uint8, count=end - begin, offset=8 + length + begin)
model = {name: np.array(view, copy=True) for name, view in state.items()}   # copy 2: the model's own tensors
del state, data
total = sum(array.nbytes for array in model.values())
print(f"loaded {len(model)} tensors, {total} bytes, in {len(shards)} shards", file=sys.stderr)
