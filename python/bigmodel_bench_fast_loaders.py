"""The fast loaders as subjects of bigmodel-bench: safetensors, Run:ai Model Streamer and fastsafetensors, each
loading a checkpoint folder's shards into CPU tensors the way its documentation says, while the parent measures
this process from outside. Speaks the child protocol (bigmodel_bench_protocol).

    hello → (imports done) ready → wait for start → load (→ cast) → loaded → wait for continue
          → touch (every tensor's pages read once) → result → wait for exit

Each yields a state dict of tensors the process owns, so the strategy of the run names only the claim it is held
to (naive, sharded and low-memory alike load the same way), except:
- `mmap` with safetensors: `get_tensor`'s views of the mapped file, as its documentation shows, not cloned;
- a run's dtype other than the stored one: each tensor cast after it is loaded, one at a time (dtype-direct and
  load-then-cast alike).
How each one reads:
- safetensors: `safe_open(path, framework="pt", device="cpu")` per shard, `get_tensor(k).clone()`; with the
  `backend="pread"` option where the installed version has it (then the tensors are owned already: no clone);
- runai-streamer: `SafetensorsStreamer().stream_files(paths, owned=True)` and `get_tensors()` (owned tensors);
- fastsafetensors: `fastsafe_open(paths, framework="pt", device="cpu", nogds=True)` and `get_tensor(k)`: from 0.5
  its docs say the tensors share ownership of their backing buffer and stay valid after the `with` (no clone);
  an older one's are cloned inside the `with`, where they are valid.
"""

import gc
import json
import os
import sys
import threading
import time

from bigmodel_bench_protocol import Attribution, Phases, fail, heartbeat, read_pages, run, send, wait_for

PACKAGES = {"safetensors": "safetensors", "runai-streamer": "runai_model_streamer", "fastsafetensors": "fastsafetensors"}


def main():
    request = json.loads(sys.stdin.read())
    if request.get("protocol_version") != 1:
        fail("usage", f"this driver speaks protocol 1, the request {request.get('protocol_version')}")
    subject = request.get("subject")
    if subject not in PACKAGES:
        fail("usage", f"this driver loads {', '.join(PACKAGES)}, not {subject!r}")
    send("hello", pid=os.getpid(), protocol_version=1, subject=subject, versions={"python": sys.version.split()[0]})
    threading.Thread(target=heartbeat, daemon=True).start()
    # The imports belong to the baseline: they are done before `ready`.
    import importlib.metadata

    import torch
    __import__(PACKAGES[subject])
    distribution = {"runai-streamer": "runai-model-streamer"}.get(subject, subject)
    versions = {"python": sys.version.split()[0], "torch": torch.__version__,
                subject: importlib.metadata.version(distribution)}
    send("hello", pid=os.getpid(), protocol_version=1, subject=subject, versions=versions)
    attribution = Attribution(request)
    gc.collect()
    send("ready")
    wait_for("start")
    attribution.start()

    files = request.get("files") or []
    phases = Phases()
    notes = []
    start = time.monotonic()
    phases.begin(f"load ({subject})")
    state = LOADERS[subject](files, request["strategy"], torch, notes)
    target = request.get("dtype")
    if target and any(t.dtype != getattr(torch, target) for t in state.values() if t.is_floating_point()):
        phases.begin(f"cast to {target}")
        for name in list(state):
            if state[name].is_floating_point():
                state[name] = state[name].to(getattr(torch, target))
        gc.collect()
    phases.end()
    load_seconds = time.monotonic() - start
    send("loaded", seconds=load_seconds)
    wait_for("continue")
    touched, touch_seconds = 0, None
    if request.get("touch", True):
        phases.begin("touch")
        start = time.monotonic()
        touched = sum(read_pages(tensor) for tensor in state.values())
        touch_seconds = time.monotonic() - start
        phases.end()
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in state.values() if t.is_floating_point()})
    attribution.stop()
    # What is still referenced after the load is what the process retains: collect the rest first.
    gc.collect()
    send("result", dtype=dtypes[0] if len(dtypes) == 1 else None, load_seconds=load_seconds,
         touch_seconds=touch_seconds, touched_bytes=touched, missing_keys=[], unexpected_keys=[], notes=notes)
    wait_for("exit")
    # The state dict is released only now: the parent read the final figures with it alive.
    del state


def load_safetensors(files, strategy, torch, notes):
    from safetensors import safe_open

    state = {}
    views = strategy == "mmap"
    pread = not views
    for path in files:
        try:
            handle = safe_open(path, framework="pt", device="cpu", backend="pread") if pread else None
        except TypeError:
            pread = False
            handle = None
        if handle is None:
            handle = safe_open(path, framework="pt", device="cpu")
        with handle as f:
            for name in f.keys():
                tensor = f.get_tensor(name)
                state[name] = tensor if views or pread else tensor.clone()
    if views:
        notes.append("mmap: get_tensor's views of the mapped shards, not cloned")
    else:
        notes.append("backend=\"pread\": owned tensors" if pread else
                     "this safetensors has no pread backend: get_tensor's mapped views cloned into owned tensors")
    return state


def load_runai(files, strategy, torch, notes):
    from runai_model_streamer import SafetensorsStreamer

    state = {}
    with SafetensorsStreamer() as streamer:
        try:
            streamer.stream_files(files, owned=True)
            owned = True
        except TypeError:
            streamer.stream_files(files)
            owned = False
        for name, tensor in streamer.get_tensors():
            state[name] = tensor if owned else tensor.clone()
    notes.append("stream_files(owned=True): owned tensors" if owned else
                 "this streamer has no owned=: its buffer's views cloned")
    return state


def load_fastsafetensors(files, strategy, torch, notes):
    import fastsafetensors
    from fastsafetensors import fastsafe_open

    version = tuple(int(part) for part in fastsafetensors.__version__.split(".")[:2])
    keep = version >= (0, 5)
    state = {}
    with fastsafe_open(files, framework="pt", device="cpu", nogds=True) as f:
        for name in f.keys():
            tensor = f.get_tensor(name)
            state[name] = tensor if keep else tensor.clone()
    notes.append("nogds=True; its tensors kept as returned (they share their backing buffer, valid after the with)"
                 if keep else "nogds=True; every tensor cloned inside the with (its own are valid only there)")
    return state


LOADERS = {"safetensors": load_safetensors, "runai-streamer": load_runai, "fastsafetensors": load_fastsafetensors}

if __name__ == "__main__":
    run(main)
