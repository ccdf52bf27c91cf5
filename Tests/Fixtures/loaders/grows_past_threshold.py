"""A loader whose cost is not a line: one copy of the checkpoint, and a second once the checkpoint is larger than
the threshold given (bytes). A sweep's held-out size above the threshold is then not where the smaller sizes'
line predicts it: the holdout check must fail.

    {"command": ["python3", "grows_past_threshold.py", "{checkpoint}", "150000000"]}
"""
import glob
import os
import sys

folder, threshold = sys.argv[1], int(sys.argv[2])
shards = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
held = []
for path in shards:
    with open(path, "rb") as f:
        held.append(bytearray(f.read()))          # one copy, the process's own memory
total = sum(len(b) for b in held)
if total > threshold:
    held += [bytearray(b) for b in held]          # and a second one past the threshold
print(f"held {sum(len(b) for b in held)} bytes for a {total}-byte checkpoint", file=sys.stderr)
