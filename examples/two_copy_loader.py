"""A loader that keeps two copies: every shard read whole into memory (the "state dict"), then every tensor
copied into fresh arrays (the "model"), then the state dict freed — the naive path, in ~40 lines of numpy.

    {"strategy": "naive", "subject": {"command": ["python3", "examples/two_copy_loader.py", "{checkpoint}"]}}

Claimed as naive (model + checkpoint) it passes; claimed as low-memory (only the model) it fails, which is
the point: bigmodel-bench checks the claim, whatever the loader. With `--keep-state-dict` it never frees the
state dict — transformers #18782's complaint: it passes naive's peak and fails the retained claim, which it can
only be held to because it says when its load is done (`loaded`, below). The safetensors layout (8-byte length,
JSON header, data) is read directly so that every dtype works, bfloat16 included, which numpy cannot name.
"""
import glob
import json
import os
import struct
import sys

import numpy as np


def loaded():
    """Optional: tell bigmodel-bench the model is loaded, then wait until it has read the process's memory."""
    events = int(os.environ.get("BIGMODEL_BENCH_EVENTS_FD", "-1"))
    control = int(os.environ.get("BIGMODEL_BENCH_CONTROL_FD", "-1"))
    if events < 0 or control < 0:
        return
    os.write(events, b'{"event":"loaded"}\n')
    reply = b""
    while b"continue" not in reply:          # {"command":"continue"}
        chunk = os.read(control, 4096)
        if not chunk:                        # end of file: the parent is gone
            sys.exit(1)
        reply += chunk


folder = sys.argv[1]
shards = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
state, data = {}, None                       # copy 1: the raw bytes of every shard, as a state dict holds them
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
if "--keep-state-dict" not in sys.argv:
    del state, data
loaded()
total = sum(array.nbytes for array in model.values())
print(f"loaded {len(model)} tensors, {total} bytes, in {len(shards)} shards", file=sys.stderr)
