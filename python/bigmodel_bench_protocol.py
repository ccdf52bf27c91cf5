"""The child protocol as the Python subjects speak it (docs/child-protocol.md): the request as JSON on standard
input, events as JSON lines on the descriptor BIGMODEL_BENCH_EVENTS_FD names, commands as JSON lines on
BIGMODEL_BENCH_CONTROL_FD. Shared by the transformers driver and the fast loaders' driver.
"""

import json
import os
import sys
import threading
import time
import traceback

EVENTS = int(os.environ.get("BIGMODEL_BENCH_EVENTS_FD", "-1"))
CONTROL = int(os.environ.get("BIGMODEL_BENCH_CONTROL_FD", "-1"))
CLOCK = time.monotonic()


LOCK = threading.Lock()


def send(event, **fields):
    """One event, one line, written whole (the heartbeat thread's lines never interleave with it)."""
    if EVENTS < 0:
        return
    line = json.dumps(dict(event=event, **fields), sort_keys=True, separators=(",", ":")) + "\n"
    data = line.encode()
    with LOCK:
        while data:
            data = data[os.write(EVENTS, data):]


def heartbeat():
    """A sign of life every half second, for the parent's watchdog (also while waiting for a command)."""
    while True:
        time.sleep(0.5)
        send("heartbeat")


def wait_for(command):
    """Blocks until the parent sends `command`; exits quietly when the parent is gone (end of file)."""
    if CONTROL < 0:
        return
    buffered = b""
    while True:
        while b"\n" not in buffered:
            chunk = os.read(CONTROL, 4096)
            if not chunk:
                os._exit(0)
            buffered += chunk
        line, buffered = buffered.split(b"\n", 1)
        try:
            if json.loads(line).get("command") == command:
                return
        except ValueError:
            pass


class Phases:
    def __init__(self):
        self.name = None

    def begin(self, name):
        now = time.monotonic() - CLOCK
        if self.name is not None:
            send("phase_ended", name=self.name, seconds=now)
        self.name = name
        send("phase_began", name=name, seconds=now)

    def end(self):
        if self.name is not None:
            send("phase_ended", name=self.name, seconds=time.monotonic() - CLOCK)
        self.name = None


def fail(kind, message):
    send("error", kind=kind, message=message.replace("\n", " ")[:2000])
    sys.exit(65 if kind == "bad_data" else 70)


def read_pages(tensor):
    """One element of every 4 KiB page read: every page of the tensor becomes resident. Returns its bytes."""
    if not tensor.numel():
        return 0
    flat = tensor.detach().view(-1) if tensor.is_contiguous() else tensor.detach()
    flat[:: max(1, 4096 // tensor.element_size())].sum() if flat.dim() == 1 else flat.sum()
    return tensor.numel() * tensor.element_size()


def run(main):
    """Runs `main`; every failure becomes one structured event and a documented exit status."""
    try:
        main()
    except SystemExit:
        raise
    except MemoryError as error:
        fail("out_of_memory", f"MemoryError: {error}")
    except Exception as error:  # noqa: BLE001 - every failure becomes one structured event
        kind = "bad_data" if isinstance(error, (ValueError, KeyError, OSError)) else "runtime"
        frame = traceback.extract_tb(error.__traceback__)[-1]
        fail(kind, f"{type(error).__name__}: {error} ({frame.filename.split('/')[-1]}:{frame.lineno})")


class Attribution:
    """memray's tracker around the load and the touch, when the request asks for it (`attribution`): the capture
    (memray's aggregated format: the allocations alive at the high-water mark, by stack, Python and native) is
    written to the file the parent names and read by bigmodel_bench_attribution.py after this process has exited,
    so the reading costs the measured process nothing. memray is imported here, before `ready`: its import belongs
    to the baseline, like the loader's."""

    def __init__(self, request):
        self.path = (request.get("attribution") or {}).get("capture_file")
        self.tracker = None
        self.memray = __import__("memray") if self.path else None

    def start(self):
        if self.memray is None:
            return
        self.tracker = self.memray.Tracker(self.path, native_traces=True, follow_fork=False,
                                           file_format=self.memray.FileFormat.AGGREGATED_ALLOCATIONS)
        self.tracker.__enter__()

    def stop(self):
        if self.tracker is not None:
            self.tracker.__exit__(None, None, None)
            self.tracker = None
