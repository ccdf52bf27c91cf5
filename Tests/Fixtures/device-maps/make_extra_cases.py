#!/usr/bin/env python3
"""Regenerates extra-maps.json (and module-trees.json): what accelerate 1.15 (transformers 5.24, torch 2.15) computes for more models,
budgets and no-split classes than accelerate-maps.json pins. Also re-checks every pinned case.

Usage (from the repository root):  python3 Tests/Fixtures/device-maps/make_extra_cases.py

How each case is computed, exactly as the pinned cases were:
- the model is built on the meta device in the case dtype (`with torch.device("meta"): from_config(cfg, dtype=...)`),
  which ties `lm_head.weight` to `model.embed_tokens.weight` when the config ties embeddings;
- `sequential`: `accelerate.utils.infer_auto_device_map(model, max_memory, no_split_module_classes, dtype)`;
- `balanced`: the same with `max_memory = accelerate.utils.get_balanced_memory(model, max_memory, no_split, dtype)`
  first (`balanced_max_memory` records the result);
- `max_memory: null` cases (no user budget) stand for a machine with the simulated accelerators of
  `accelerator_memory` and `cpu_available` bytes of free RAM: accelerate's `get_max_memory(None)` is replaced by one
  returning exactly those sizes (accelerator i -> its size, "cpu" -> cpu_available); everything else is unchanged;
- `model_bytes` is `compute_module_sizes(model, dtype)[""]`.
"""
import json
import os
import sys

import accelerate
import torch
import transformers
from accelerate.utils import compute_module_sizes, get_balanced_memory, infer_auto_device_map
import accelerate.utils.modeling as accelerate_modeling
from transformers import AutoConfig, AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}

# Configs written next to this script (the pinned llama-deep / gemma-deep are reused as they are).
BASE = {
    "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "initializer_range": 0.02,
    "max_position_embeddings": 2048, "rms_norm_eps": 1e-06, "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
    "transformers_version": "5.24.0", "use_cache": True,
}
CONFIGS = {
    # Qwen2: q/k/v biases, no head_dim (128 / 4 heads = 32), untied.
    "qwen2-bias": dict(BASE, model_type="qwen2", dtype="bfloat16", hidden_size=128, intermediate_size=320,
                       num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=8, vocab_size=640,
                       tie_word_embeddings=False),
    # Mistral: GQA with 1 kv head, explicit head_dim, untied.
    "mistral-small": dict(BASE, model_type="mistral", dtype="float16", hidden_size=96, intermediate_size=256, head_dim=24,
                          num_attention_heads=4, num_key_value_heads=1, num_hidden_layers=9, vocab_size=800,
                          tie_word_embeddings=False),
    # Llama with tied embeddings and a large vocabulary: the tied pair is the biggest thing in the model.
    "llama-tied": dict(BASE, model_type="llama", dtype="float16", hidden_size=64, intermediate_size=160, head_dim=16,
                       num_attention_heads=4, num_key_value_heads=4, num_hidden_layers=6, vocab_size=4096,
                       attention_bias=False, mlp_bias=True, tie_word_embeddings=True),
}

GIB = 1 << 30


def build(model_name, dtype):
    config = AutoConfig.from_pretrained(os.path.join(HERE, model_name, "config.json"))
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=DTYPES[dtype])


def jsonable_memory(memory):
    return None if memory is None else {str(k): v for k, v in memory.items()}


def run(case):
    model = build(case["model"], case["dtype"])
    dtype = DTYPES[case["dtype"]]
    no_split = case["no_split_module_classes"]
    max_memory = case.get("max_memory")
    if max_memory is not None:
        max_memory = {(int(k) if k.isdigit() else k): v for k, v in max_memory.items()}
    original = accelerate_modeling.get_max_memory
    if max_memory is None:
        simulated = {int(k): v for k, v in case["accelerator_memory"].items()}
        simulated["cpu"] = case["cpu_available"]
        accelerate_modeling.get_max_memory = lambda m=None: dict(simulated) if m is None else original(m)
    try:
        balanced = None
        if case["mode"] == "balanced":
            balanced = get_balanced_memory(model, max_memory=None if max_memory is None else dict(max_memory),
                                           no_split_module_classes=no_split, dtype=dtype)
            placement_memory = balanced
        else:
            placement_memory = None if max_memory is None else dict(max_memory)
        device_map = infer_auto_device_map(model, max_memory=placement_memory, no_split_module_classes=no_split, dtype=dtype)
    finally:
        accelerate_modeling.get_max_memory = original
    out = dict(case)
    out["balanced_max_memory"] = jsonable_memory(balanced)
    out["model_bytes"] = compute_module_sizes(model, dtype=dtype)[""]
    out["device_map"] = dict(device_map)
    return out


def case(name, model, dtype, mode, max_memory, no_split, **extra):
    c = {"name": name, "model": model, "dtype": dtype, "mode": mode, "max_memory": max_memory,
         "no_split_module_classes": no_split}
    c.update(extra)
    return c


def extra_cases():
    cases = []
    q, m, t, l, g = "qwen2-bias", "mistral-small", "llama-tied", "llama-deep", "gemma-deep"
    qs, ms, ts, ls, gs = ["Qwen2DecoderLayer"], ["MistralDecoderLayer"], ["LlamaDecoderLayer"], ["LlamaDecoderLayer"], ["GemmaDecoderLayer"]
    # qwen2 with biases: model_bytes (bf16) = 2 * params + rotary buffers.
    for dtype in ("bfloat16", "float32"):
        scale = 1 if dtype == "bfloat16" else 2
        cases += [
            case(f"qwen2 {dtype} three tiers", q, dtype, "sequential", {"0": 900_000 * scale, "cpu": 1_000_000 * scale}, qs),
            case(f"qwen2 {dtype} two accelerators", q, dtype, "sequential", {"0": 300_000 * scale, "1": 300_000 * scale, "cpu": 400_000 * scale}, qs),
            case(f"qwen2 {dtype} balanced, roomy", q, dtype, "balanced", {"0": 2_000_000 * scale, "1": 2_000_000 * scale, "cpu": 4_000_000 * scale}, qs),
            case(f"qwen2 {dtype} balanced, three accelerators", q, dtype, "balanced",
                 {"0": 1_000_000 * scale, "1": 1_000_000 * scale, "2": 1_000_000 * scale, "cpu": 1_000_000 * scale}, qs),
        ]
    cases += [
        case("mistral cpu and disk only", m, "float16", "sequential", {"cpu": 700_000}, ms),
        case("mistral accelerator and disk, no cpu key", m, "float16", "sequential", {"0": 800_000}, ms),
        case("mistral keys out of order, disk budget ignored", m, "float16", "sequential", {"disk": 1, "cpu": 500_000, "1": 300_000, "0": 300_000}, ms),
        case("mistral zero budget on accelerator 0", m, "float16", "sequential", {"0": 0, "1": 900_000, "cpu": 900_000}, ms),
        case("mistral balanced roomy", m, "float16", "balanced", {"0": 10_000_000, "1": 10_000_000, "cpu": 10_000_000}, ms),
        case("mistral balanced zero on 1", m, "float16", "balanced", {"0": 10_000_000, "1": 0, "cpu": 10_000_000}, ms),
        case("mistral bf16 balanced tight", m, "bfloat16", "balanced", {"0": 600_000, "1": 600_000, "cpu": 600_000}, ms),
        case("mistral float32 all on accelerator", m, "float32", "sequential", {"0": 20_000_000, "cpu": 1_000_000}, ms),
    ]
    # Tied embeddings: accelerate counts the shared weight once (under model.embed_tokens); lm_head follows it.
    cases += [
        case("llama-tied pair on accelerator", t, "float16", "sequential", {"0": 900_000, "cpu": 600_000}, ts),
        case("llama-tied pair pushed to cpu", t, "float16", "sequential", {"0": 500_000, "cpu": 1_500_000}, ts),
        case("llama-tied pair pushed to disk", t, "float16", "sequential", {"0": 200_000, "cpu": 300_000}, ts),
        case("llama-tied no-split none", t, "float16", "sequential", {"0": 700_000, "cpu": 400_000}, []),
        case("llama-tied balanced", t, "float16", "balanced", {"0": 3_000_000, "1": 3_000_000, "cpu": 3_000_000}, ts),
        case("llama-tied float32 pair on cpu", t, "float32", "sequential", {"0": 1_000_000, "cpu": 3_000_000}, ts),
    ]
    # No-split overrides: layers split into attention / mlp / norms, merged back where one device holds a whole parent.
    cases += [
        case("llama-deep no-split none", l, "float16", "sequential", {"0": 2_493_600, "cpu": 1_496_160}, []),
        case("llama-deep no-split MLP", l, "float16", "sequential", {"0": 1_300_000, "cpu": 1_300_000}, ["LlamaMLP"]),
        case("llama-deep no-split attention+MLP", l, "float32", "sequential", {"0": 3_000_000, "1": 2_000_000, "cpu": 2_000_000}, ["LlamaAttention", "LlamaMLP"]),
        case("llama-deep no-split none balanced", l, "float16", "balanced", {"0": 3_000_000, "1": 3_000_000, "cpu": 3_000_000}, []),
        case("gemma-deep no-split none", g, "float16", "sequential", {"0": 1_505_683, "cpu": 1_505_683}, []),
        case("gemma-deep bf16 three tiers", g, "bfloat16", "sequential", {"0": 2_000_000, "cpu": 1_000_000}, gs),
        case("gemma-deep bf16 balanced roomy", g, "bfloat16", "balanced", {"0": 8_000_000, "1": 8_000_000, "cpu": 8_000_000}, gs),
        case("llama-deep balanced roomy", l, "float16", "balanced", {"0": 9_974_400, "1": 9_974_400, "cpu": 9_974_400}, ls),
        case("llama-deep balanced one accelerator", l, "float16", "balanced", {"0": 3_000_000, "cpu": 3_000_000}, ls),
    ]
    # No user budget: simulated accelerators of the given sizes; one accelerator -> 90% of it in balanced mode.
    cases += [
        case("llama-deep auto, one 4 MB accelerator, no budget", l, "float16", "balanced", None, ls,
             accelerator_memory={"0": 4_000_000}, cpu_available=2_000_000),
        case("llama-deep sequential, one 4 MB accelerator, no budget", l, "float16", "sequential", None, ls,
             accelerator_memory={"0": 4_000_000}, cpu_available=2_000_000),
        case("qwen2 auto, two accelerators, no budget", q, "bfloat16", "balanced", None, qs,
             accelerator_memory={"0": 1_000_000, "1": 1_000_000}, cpu_available=3_000_000),
        case("gemma-deep auto, one accelerator, no budget", g, "float32", "balanced", None, gs,
             accelerator_memory={"0": 9_000_000}, cpu_available=9_000_000),
    ]
    return cases


def module_tree(model_name):
    """`named_modules()` with each module's class and its own parameters and buffers, as transformers registers
    them (built in float16, so a tensor whose dtype is not float16 is one with a fixed dtype)."""
    model = build(model_name, "float16")
    modules = []
    for name, module in model.named_modules():
        non_persistent = module._non_persistent_buffers_set
        modules.append({
            "name": name,
            "class": type(module).__name__,
            "parameters": [[n, list(t.shape)] for n, t in module.named_parameters(recurse=False)],
            "buffers": [[n, list(t.shape), str(t.dtype).removeprefix("torch."), n not in non_persistent]
                        for n, t in module.named_buffers(recurse=False)],
        })
    return {"modules": modules, "no_split_modules": sorted(model._no_split_modules),
            "tied": [sorted(g) for g in accelerate.utils.find_tied_parameters(model)]}


def main():
    for name, config in CONFIGS.items():
        os.makedirs(os.path.join(HERE, name), exist_ok=True)
        with open(os.path.join(HERE, name, "config.json"), "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write("\n")

    # The pinned cases must still come out the same (a check of this script's method).
    with open(os.path.join(HERE, "accelerate-maps.json")) as f:
        pinned = json.load(f)
    for c in pinned["cases"]:
        got = run({k: c[k] for k in ("model", "dtype", "mode", "max_memory", "no_split_module_classes")})
        assert got["device_map"] == c["device_map"], (c, got["device_map"])
        assert got["model_bytes"] == c["model_bytes"], (c, got["model_bytes"])
        if c["mode"] == "balanced":
            assert got["balanced_max_memory"] == c["balanced_max_memory"], (c, got["balanced_max_memory"])
    print(f"{len(pinned['cases'])} pinned cases reproduced", file=sys.stderr)

    results = [run(c) for c in extra_cases()]
    document = {
        "accelerate": accelerate.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "note": __doc__.strip().split("\n\n", 1)[1],
        "cases": results,
    }
    with open(os.path.join(HERE, "extra-maps.json"), "w") as f:
        json.dump(document, f, indent=1)
        f.write("\n")
    print(f"{len(results)} extra cases written", file=sys.stderr)

    trees = {name: module_tree(name) for name in ["llama-deep", "gemma-deep", *CONFIGS]}
    with open(os.path.join(HERE, "module-trees.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "note": module_tree.__doc__, "models": trees}, f, indent=1)
        f.write("\n")
    print(f"{len(trees)} module trees written", file=sys.stderr)


if __name__ == "__main__":
    main()
