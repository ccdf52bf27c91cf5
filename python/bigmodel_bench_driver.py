"""The transformers subject of bigmodel-bench: loads a checkpoint the way the Hugging Face guide says each
strategy does, while the parent measures this process from outside (/proc/PID/status, smaps_rollup).

It speaks the child protocol (docs/child-protocol.md): the request as JSON on standard input, events as JSON
lines on the descriptor BIGMODEL_BENCH_EVENTS_FD names, commands as JSON lines on BIGMODEL_BENCH_CONTROL_FD.

    hello → (imports done) ready → wait for start → phases … → loaded → wait for continue
          → touch (every parameter read once, as a first forward pass would) → result → wait for exit

Works on transformers 4.4x (torch_dtype=, low_cpu_mem_usage=True) and 5.x (dtype=).
"""

import gc
import json
import os
import sys
import threading
import time

from bigmodel_bench_protocol import Attribution, Phases, fail, heartbeat, read_pages, run, send, wait_for


def main():
    request = json.loads(sys.stdin.read())
    if request.get("protocol_version") != 1:
        fail("usage", f"this driver speaks protocol 1, the request {request.get('protocol_version')}")
    send("hello", pid=os.getpid(), protocol_version=1, subject="transformers", versions={"python": sys.version.split()[0]})
    threading.Thread(target=heartbeat, daemon=True).start()
    # The imports belong to the baseline: they are done before `ready`.
    import safetensors
    import safetensors.torch
    import torch
    import transformers

    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
                "safetensors": safetensors.__version__}
    try:
        import accelerate
        versions["accelerate"] = accelerate.__version__
    except ImportError:
        pass
    major = int(transformers.__version__.split(".")[0])
    send("hello", pid=os.getpid(), protocol_version=1, subject="transformers", versions=versions)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    attribution = Attribution(request)
    gc.collect()
    send("ready")
    wait_for("start")
    attribution.start()

    loader = Loader(request, torch, transformers, safetensors.torch, major)
    phases = Phases()
    start = time.monotonic()
    model, info = loader.load(phases)
    phases.end()
    load_seconds = time.monotonic() - start
    send("loaded", seconds=load_seconds)
    wait_for("continue")
    touched = 0
    touch_seconds = None
    if request.get("touch", True):
        phases.begin("touch")
        start = time.monotonic()
        touched = loader.touch(model)
        touch_seconds = time.monotonic() - start
        phases.end()
    attribution.stop()
    # What is still referenced after the load is what the process retains: collect the rest first.
    gc.collect()
    send("result", dtype=info["dtype"], load_seconds=load_seconds, touch_seconds=touch_seconds, touched_bytes=touched,
         missing_keys=info.get("missing", []), unexpected_keys=info.get("unexpected", []),
         hf_device_map=info.get("hf_device_map"), notes=info.get("notes", []))
    wait_for("exit")
    # The model is released only now: the parent read the final figures with it alive.
    del model


class Loader:
    """One code path per strategy, the calls the guide names."""

    def __init__(self, request, torch, transformers, st, major):
        self.request = request
        self.torch = torch
        self.transformers = transformers
        self.st = st
        self.major = major
        self.path = request["checkpoint"]
        self.files = request.get("files") or []

    def dtype(self, name):
        return getattr(self.torch, name)

    def dtype_kwargs(self, dtype):
        """`dtype=` (transformers 5) or `torch_dtype=` (4.x)."""
        return {"dtype": dtype} if self.major >= 5 else {"torch_dtype": dtype}

    def target(self):
        """The run's dtype, else the config's (`auto`)."""
        if self.request.get("dtype"):
            return self.dtype(self.request["dtype"])
        config = self.transformers.AutoConfig.from_pretrained(self.path)
        value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or self.torch.float32
        return self.dtype(value) if isinstance(value, str) else value

    def load(self, phases):
        strategy = self.request["strategy"]
        # transformers 5's from_pretrained is the mmap path: same-dtype weights stay views of the mapped shards.
        method = {
            "naive": self.naive, "sharded": self.sharded, "low-memory": self.low_memory, "dtype-direct": self.dtype_direct,
            "load-then-cast": self.load_then_cast, "device-map": self.device_map, "mmap": self.low_memory,
        }.get(strategy)
        if method is None:
            fail("usage", f"the transformers driver has no code path for strategy '{strategy}'")
        return method(phases)

    def from_config(self, phases, dtype):
        phases.begin("init")
        config = self.transformers.AutoConfig.from_pretrained(self.path)
        return self.transformers.AutoModelForCausalLM.from_config(config, **self.dtype_kwargs(dtype))

    @staticmethod
    def read_pages(tensor):
        return read_pages(tensor)

    def read_every_byte(self, state):
        """The state dict held in RAM: every tensor's pages read (mapped pages become resident)."""
        for tensor in state.values():
            self.read_pages(tensor)

    def naive(self, phases):
        dtype = self.target()
        model = self.from_config(phases, dtype)
        phases.begin("read checkpoint")
        state = {}
        for file in self.files:
            state.update(self.st.load_file(file))
        self.read_every_byte(state)
        phases.begin("copy")
        result = model.load_state_dict(state, strict=False)
        phases.begin("free state dict")
        del state
        gc.collect()
        return model, {"dtype": str(dtype).replace("torch.", ""), "missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}

    def sharded(self, phases):
        """What `load_sharded_checkpoint` did before transformers 5 removed it: one shard at a time."""
        dtype = self.target()
        model = self.from_config(phases, dtype)
        missing = None
        unexpected = []
        for index, file in enumerate(self.files):
            phases.begin(f"read shard {index + 1}/{len(self.files)}")
            state = self.st.load_file(file)
            self.read_every_byte(state)
            phases.begin(f"copy shard {index + 1}/{len(self.files)}")
            result = model.load_state_dict(state, strict=False)
            missing = set(result.missing_keys) if missing is None else missing & set(result.missing_keys)
            unexpected += list(result.unexpected_keys)
            del state
            gc.collect()
        return model, {"dtype": str(dtype).replace("torch.", ""), "missing": sorted(missing or []), "unexpected": unexpected}

    def pretrained(self, phases, dtype, **kwargs):
        phases.begin("from_pretrained")
        kwargs.update(self.dtype_kwargs(dtype))
        if self.major < 5:
            kwargs.setdefault("low_cpu_mem_usage", True)
        model, info = self.transformers.AutoModelForCausalLM.from_pretrained(self.path, output_loading_info=True, **kwargs)
        resolved = next((p.dtype for p in model.parameters() if p.dtype.is_floating_point), None)
        return model, {"dtype": str(resolved or dtype).replace("torch.", ""), "missing": list(info.get("missing_keys", [])),
                       "unexpected": list(info.get("unexpected_keys", []))}

    def low_memory(self, phases):
        return self.pretrained(phases, self.dtype(self.request["dtype"]) if self.request.get("dtype") else "auto")

    def dtype_direct(self, phases):
        return self.pretrained(phases, self.target())

    def load_then_cast(self, phases):
        model, info = self.pretrained(phases, self.torch.float32)
        target = self.target()
        if target != self.torch.float32:
            phases.begin(f"cast to {str(target).replace('torch.', '')}")
            model = model.to(target)
            gc.collect()
            info["dtype"] = str(target).replace("torch.", "")
        return model, info

    def device_map(self, phases):
        """device_map with the run's budgets; without accelerators only the cpu and disk budgets apply."""
        placement = self.request.get("placement") or {}
        device_map = placement.get("device_map", "auto")
        if isinstance(device_map, dict):
            device_map = {module: (int(device) if device.isdigit() else device) for module, device in device_map.items()}
        budgets = placement.get("max_memory") or {}
        max_memory = {("cpu" if key == "cpu" else key): value for key, value in budgets.items() if key in ("cpu", "disk")}
        notes = []
        if any(key.isdigit() for key in budgets):
            notes.append("no accelerator here: the accelerator budgets of the run were dropped, only cpu and disk apply")
        kwargs = {"device_map": device_map, "offload_folder": self.request.get("offload_folder")}
        if max_memory:
            kwargs["max_memory"] = max_memory
        model, info = self.pretrained(phases, self.target(), **kwargs)
        info["hf_device_map"] = {name: str(device) for name, device in getattr(model, "hf_device_map", {}).items()}
        info["notes"] = notes
        return model, info

    def touch(self, model):
        """Every parameter's bytes read once, as a first forward pass would; offloaded (meta) ones are skipped."""
        touched = 0
        with self.torch.no_grad():
            for tensor in list(model.parameters()) + list(model.buffers()):
                if tensor.device.type != "meta":
                    touched += self.read_pages(tensor)
        return touched


if __name__ == "__main__":
    run(main)
