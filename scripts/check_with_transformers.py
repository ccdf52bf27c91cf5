#!/usr/bin/env python3
"""Acceptance check against the real Hugging Face stack (needs torch + transformers; not run in CI).

For each config given: builds the model with transformers, saves it with save_pretrained(max_shard_size=...),
generates the same checkpoint with `bigmodel-bench generate`, then checks that
  1. the weight_map (and the file list) is identical, and
  2. from_pretrained(<generated folder>) reports no missing, unexpected or mismatched keys.

usage: scripts/check_with_transformers.py BIGMODEL_BENCH CONFIG.json DTYPE MAX_SHARD_SIZE [CONFIG DTYPE SIZE ...]
"""
import json, os, subprocess, sys, tempfile

import torch
import transformers


def check(tool, config_path, dtype, shard):
    with tempfile.TemporaryDirectory() as tmp:
        config = transformers.AutoConfig.from_pretrained(config_path)
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
        ref = os.path.join(tmp, "ref")
        model.save_pretrained(ref, max_shard_size=shard)
        gen = os.path.join(tmp, "gen")
        subprocess.run([tool, "generate", "--config", config_path, "--out", gen, "--dtype", dtype, "--max-shard-size", shard], check=True, capture_output=True)
        ref_files = sorted(f for f in os.listdir(ref) if f.endswith(".safetensors") or f.endswith(".index.json"))
        gen_files = sorted(f for f in os.listdir(gen) if f.endswith(".safetensors") or f.endswith(".index.json"))
        assert ref_files == gen_files, (ref_files, gen_files)
        index = "model.safetensors.index.json"
        if index in ref_files:
            a = json.load(open(os.path.join(ref, index)))
            b = json.load(open(os.path.join(gen, index)))
            assert a["weight_map"] == b["weight_map"], "weight_map differs"
            assert a["metadata"] == b["metadata"], (a["metadata"], b["metadata"])
        loaded, info = transformers.AutoModelForCausalLM.from_pretrained(gen, output_loading_info=True)
        problems = {k: v for k, v in info.items() if v}
        assert not problems, problems
        print(f"ok: {config.model_type} {dtype} {shard}: {len(ref_files)} file(s), weight_map identical, from_pretrained: no missing/unexpected/mismatched keys")


if __name__ == "__main__":
    tool, rest = sys.argv[1], sys.argv[2:]
    for i in range(0, len(rest), 3):
        check(tool, *rest[i:i + 3])
