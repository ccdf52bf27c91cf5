"""Reads a memray capture a driver wrote under `--attribute` and answers where its high-water mark came from: the
allocations alive at that moment, grouped by their Python call stack (by native frames where no Python frame
called them: a loader's own threads), the biggest first. Runs after the measured process has exited.

Request (JSON on standard input): {"capture_file": PATH, "top": N}.
Reply (JSON on standard output): {"memray_version", "peak_bytes", "allocations", "stack_count", "stacks": [
  {"bytes", "allocations", "allocators": ["malloc", "mmap", …], "frames": [{"function", "file"?, "line"?}, …]}]}
— frames innermost first: the native frames nearest the allocation (up to three), then the Python frames.
A failure: a non-zero status and one line on standard error.
"""

import json
import sys

NATIVE_LEAVES = 3


def short(path):
    """`transformers/modeling_utils.py` rather than the interpreter's whole site-packages path."""
    for marker in ("site-packages/", "dist-packages/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1] if marker != "lib/python3" else path.rsplit("/", 1)[-1]
    return path


def frames_of(record):
    """The native frames nearest the allocation, then the Python stack (both innermost first)."""
    python = [(f, short(p), line) for f, p, line in record.stack_trace()]
    try:
        hybrid = record.hybrid_stack_trace()
    except (NotImplementedError, RuntimeError):  # a capture without native traces
        hybrid = []
    first_python = next((i for i, (_, p, _) in enumerate(hybrid) if p.endswith(".py")), len(hybrid))
    native = [(f, short(p), line) for f, p, line in hybrid[:min(first_python, NATIVE_LEAVES)]]
    key = tuple(python) if python else tuple((f, p, line) for f, p, line in hybrid[:8])
    return key, native + python if python else [(f, short(p), line) for f, p, line in hybrid[:8]]


def frame(function, path, line):
    """A frame as the reply has it: a native frame without symbols' file and line has neither key."""
    known = path and path != "<unknown>"
    return {"function": function, **({"file": path, "line": line} if known else {})}


def main():
    request = json.loads(sys.stdin.read())
    import memray

    reader = memray.FileReader(request["capture_file"])
    groups = {}
    for record in reader.get_high_watermark_allocation_records(merge_threads=True):
        key, frames = frames_of(record)
        group = groups.setdefault(key, {"bytes": 0, "allocations": 0, "allocators": set(), "frames": frames,
                                        "largest": 0})
        group["bytes"] += record.size
        group["allocations"] += record.n_allocations
        group["allocators"].add(memray.AllocatorType(record.allocator).name.lower())
        if record.size > group["largest"]:  # the frames of its largest allocation stand for the group
            group["largest"], group["frames"] = record.size, frames
    ranked = sorted(groups.values(), key=lambda g: -g["bytes"])
    stacks = [{"bytes": g["bytes"], "allocations": g["allocations"], "allocators": sorted(g["allocators"]),
               "frames": [frame(*f) for f in g["frames"]]} for g in ranked[:int(request.get("top", 8))]]
    import importlib.metadata
    json.dump({"memray_version": importlib.metadata.version("memray"), "peak_bytes": reader.metadata.peak_memory,
               "allocations": sum(g["allocations"] for g in ranked), "stack_count": len(ranked), "stacks": stacks},
              sys.stdout, sort_keys=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - one line for the parent
        print(f"{type(error).__name__}: {error}".replace("\n", " ")[:500], file=sys.stderr)
        sys.exit(65)
