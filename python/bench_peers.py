"""The peers `bigmodel-bench bench load` times the engine against, on the same safetensors files.

    python bench_peers.py CHECKPOINT_FOLDER PEER

PEER is one of
  safe_open_clone   torch: safe_open(framework="pt") on every shard, get_tensor(name).clone() for every tensor
                    (a resident copy of every tensor, held until the end);
  load_file_touch   safetensors.torch.load_file on every shard, every page of every tensor read once
                    (whatever load_file returns made resident: safetensors 0.8 returns views of the mapped
                    file, so this is the mapped path, like the engine's mmap strategy), the tensors held;
  load_file_clone   safetensors.torch.load_file on every shard, every tensor cloned (owned, resident copies,
                    like the engine's low-memory strategy), the copies held.
Prints one JSON line: the peer, the seconds of the load alone (interpreter start-up and imports excluded),
the bytes held, and the versions.
"""
import glob
import json
import os
import sys
import time

import safetensors
import torch
from safetensors import safe_open
from safetensors.torch import load_file


def touch(tensor):
    flat = tensor.reshape(-1).view(torch.uint8)
    return int(flat[::4096].sum()) if flat.numel() else 0


def main():
    folder, peer = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
    held = []
    start = time.perf_counter()
    if peer == "safe_open_clone":
        for path in files:
            with safe_open(path, framework="pt") as f:
                for name in f.keys():
                    held.append(f.get_tensor(name).clone())
    elif peer == "load_file_touch":
        sink = 0
        for path in files:
            state = load_file(path)
            for tensor in state.values():
                sink += touch(tensor)
                held.append(tensor)
    elif peer == "load_file_clone":
        for path in files:
            state = load_file(path)
            held.extend(tensor.clone() for tensor in state.values())
            del state
    else:
        raise SystemExit(f"unknown peer {peer!r}")
    seconds = time.perf_counter() - start
    held_bytes = sum(t.numel() * t.element_size() for t in held)
    print(json.dumps({
        "peer": peer, "seconds": seconds, "bytes": held_bytes, "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "safetensors": safetensors.__version__, "python": sys.version.split()[0]},
    }))


if __name__ == "__main__":
    main()
