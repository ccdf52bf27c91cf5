"""A loader whose cost is not a line: one copy of the checkpoint, and two more once the checkpoint is larger than
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
    buffer = bytearray(os.path.getsize(path))     # one copy, the process's own memory, read in place
    with open(path, "rb") as f:
        f.readinto(buffer)
    held.append(buffer)
total = sum(len(b) for b in held)
if total > threshold:
    held += [bytearray(b) for b in held] * 2      # and two more past the threshold
print(f"held {sum(len(b) for b in held)} bytes for a {total}-byte checkpoint", file=sys.stderr)
