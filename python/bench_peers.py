"""The peers `bigmodel-bench bench load` times the engine against, on the same safetensors files.

    python bench_peers.py CHECKPOINT_FOLDER PEER

PEER is one of
  safe_open_clone   torch: safe_open(framework="pt") on every shard, get_tensor(name).clone() for every tensor
                    (a resident copy of every tensor, held until the end);
  load_file_touch   safetensors.torch.load_file on every shard, every page of every tensor read once
                    (whatever load_file returns made resident: safetensors 0.8 returns views of the mapped
                    file, so this is the mapped path, like the engine's mmap strategy), the tensors held;
  load_file_clone   safetensors.torch.load_file on every shard, every tensor cloned (owned, resident copies,
                    like the engine's low-memory strategy), the copies held;
  safe_open_pread   safetensors: safe_open(framework="pt", backend="pread") on every shard, get_tensor(name) for
                    every tensor (owned tensors read with pread, no mapping), held;
  runai_owned       Run:ai Model Streamer: SafetensorsStreamer().stream_files(shards, owned=True), every tensor
                    of get_tensors() held (owned tensors, its C++ reader threads: RUNAI_STREAMER_CONCURRENCY);
  fastsafetensors   fastsafetensors: fastsafe_open(shards, framework="pt", device="cpu", nogds=True), every
                    get_tensor(name) held (0.5: they share ownership of its buffers).
Prints one JSON line: the peer, the seconds of the load alone (interpreter start-up and imports excluded),
the bytes held, the process's peak RSS (ru_maxrss) and the versions; or, for a peer this Python cannot run
(its package or option missing), {"peer": …, "unavailable": why}.
"""
import glob
import json
import os
import resource
import sys
import time

import safetensors
import torch
from safetensors import safe_open
from safetensors.torch import load_file


def touch(tensor):
    flat = tensor.reshape(-1).view(torch.uint8)
    return int(flat[::4096].sum()) if flat.numel() else 0


def level(nbytes):
    """Writes and frees nbytes of fresh memory, then resets VmHWM (clear_refs 5): on a VM whose host takes freed
    memory back, the load then finds memory the host backs, as bench load's own cases do; the peak reported is
    the load's alone. Done after the imports, which take seconds, so the host has no time to take it back."""
    if nbytes <= 0:
        return False
    buffer = torch.empty(nbytes, dtype=torch.uint8)
    buffer.fill_(1)
    del buffer
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def peak_rss(reset):
    """VmHWM when it was reset after levelling, else ru_maxrss (the same high-water mark, never reset)."""
    if reset:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    folder, peer = sys.argv[1], sys.argv[2]
    level_bytes = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    files = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
    held = []
    reset = False if peer in OPTIONAL else level(level_bytes)
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
    elif peer in OPTIONAL:
        try:
            loader = OPTIONAL[peer]()
        except Exception as error:  # noqa: BLE001 - whatever stops it, the peer is reported unavailable
            print(json.dumps({"peer": peer, "unavailable": f"{type(error).__name__}: {error}"[:300]}))
            return
        reset = level(level_bytes)
        start = time.perf_counter()
        held = loader(files)
    else:
        raise SystemExit(f"unknown peer {peer!r}")
    seconds = time.perf_counter() - start
    held_bytes = sum(t.numel() * t.element_size() for t in held)
    print(json.dumps({
        "peer": peer, "seconds": seconds, "bytes": held_bytes, "threads": torch.get_num_threads(),
        "max_rss_bytes": peak_rss(reset),
        "versions": {"torch": torch.__version__, "safetensors": safetensors.__version__, "python": sys.version.split()[0]},
    }))


def pread_loader():
    """safe_open with backend="pread" where this safetensors has it (a TypeError or error otherwise)."""
    def load(files):
        held = []
        for path in files:
            with safe_open(path, framework="pt", backend="pread") as f:
                held.extend(f.get_tensor(name) for name in f.keys())
        return held
    with safe_open(sorted(glob.glob(os.path.join(sys.argv[1], "*.safetensors")))[0], framework="pt", backend="pread"):
        pass
    return load


def runai_loader():
    """The streamer as the runai-streamer subject drives it (bigmodel_bench_fast_loaders.load_runai)."""
    import runai_model_streamer  # noqa: F401 - unavailable when this Python lacks it
    from bigmodel_bench_fast_loaders import load_runai
    return lambda files: list(load_runai(files, "low-memory", torch, []).values())


def fastsafetensors_loader():
    """fastsafetensors as its subject drives it (bigmodel_bench_fast_loaders.load_fastsafetensors)."""
    import fastsafetensors  # noqa: F401 - unavailable when this Python lacks it
    from bigmodel_bench_fast_loaders import load_fastsafetensors
    return lambda files: list(load_fastsafetensors(files, "low-memory", torch, []).values())


OPTIONAL = {"safe_open_pread": pread_loader, "runai_owned": runai_loader, "fastsafetensors": fastsafetensors_loader}


if __name__ == "__main__":
    main()
