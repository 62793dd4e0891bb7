"""Benchmark: DeepSpeed training throughput and MFU of CGc at real mT5 sizes (random weights).

Two steps, so the GPU side needs only torch, transformers and deepspeed (no polars)::

    # here: real prompts (template d) of training pairs from a prepared train split
    python benchmarks/bench_train.py save --pairs PREP_TRAIN --out runs/train_batches.pt
    # on the GPU machine
    python benchmarks/bench_train.py run --batches runs/train_batches.pt --size base --steps 300

``run`` builds CGc on a randomly initialised mT5 of the given size (public
google/mt5-* dimensions, 250,112-token vocabulary), wraps it in the same
DeepSpeed engine as ``recsys24 train`` (``recsys24.training.engine``: ZeRO-2,
torch AdamW, warmup + cosine, bf16 on GPU), trains ``--steps`` steps cycling
over the saved batches, and prints pairs/s, prompts/s and model FLOP
utilisation: FLOPs per prompt = 6 x (encoder non-embedding parameters x prompt
tokens + decoder non-embedding parameters x 1 decoder token) + attention, over
the card's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models import MT5_SIZES, mt5_config  # noqa: E402

# "base-layout": mt5-base's 12 + 12 layers and 12 heads at d_model 64, so that on a CPU with one pair per
# step the step time is the host-side cost of running that many layers through DeepSpeed, not arithmetic.
SIZES = {**MT5_SIZES, "base-layout": (64, 128, 16, 12, 12)}
PEAK_BF16_TFLOPS = {"H100 80GB HBM3": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H200": 989.0, "A100": 312.0}


def save(args) -> None:
    import tempfile

    from recsys24.data.prepared import open_prepared
    from recsys24.model_inputs.prompt_collator import PromptCollator
    from recsys24.prompts.article_tokens import build_token_table
    from recsys24.prompts.templates import PromptConfig
    from recsys24.prompts.tokenizer import offline_tokenizer

    train = open_prepared(args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        tok = offline_tokenizer(train.articles(), tmp)
    prompt = PromptConfig(template="d", history_size=args.history_size, max_length=256)
    collate = PromptCollator(build_token_table(train.articles(), tok, prompt), prompt)
    batches = [vars(collate(f)) for f, _ in zip(train.iter_pairs(batch_rows=args.micro_batch), range(args.batches))]
    tokens = sum(int(b["attention_mask"].sum()) for b in batches) / sum(len(b["input_ids"]) for b in batches)
    torch.save({"batches": batches, "yes_id": tok.convert_tokens_to_ids("▁ja"), "no_id": tok.convert_tokens_to_ids("▁nej"),
                "history_size": args.history_size}, args.out)
    print(f"{len(batches)} batches of {args.micro_batch} pairs, {tokens:.0f} prompt tokens on average -> {args.out}")


def flops_per_prompt(model, tokens: float) -> float:
    """Training FLOPs of one CGc prompt: 3 x forward (forward + backward)."""
    cfg = model.backbone.config
    enc = sum(p.numel() for n, p in model.backbone.encoder.named_parameters() if "embed" not in n)
    dec = sum(p.numel() for n, p in model.backbone.decoder.named_parameters() if "embed" not in n)
    attn = 4 * tokens * tokens * cfg.d_kv * cfg.num_heads * cfg.num_layers  # QK^T and AV, encoder
    cross = 4 * tokens * cfg.d_kv * cfg.num_heads * cfg.num_decoder_layers  # one decoder token
    return 3 * (2 * enc * tokens + 2 * dec + attn + cross)


def pair_slices(batch: dict, pairs: int) -> list[dict]:
    """Split a saved CGc batch (one prompt row per candidate) into batches of ``pairs`` training pairs."""
    group, rows = batch["group"], batch["candidate_row"]
    out = []
    for lo in range(0, int(group.max()) + 1, pairs):
        keep = (group >= lo) & (group < lo + pairs)
        r = rows[keep]
        width = int(batch["attention_mask"][r].sum(1).max())
        part = {k: v for k, v in batch.items() if v is None}
        if batch.get("answer_pos") is not None:
            part["answer_pos"] = batch["answer_pos"][r]
        part.update(input_ids=batch["input_ids"][r, :width], attention_mask=batch["attention_mask"][r, :width],
                    group=group[keep] - lo, candidate_row=torch.arange(len(r)), labels=batch["labels"][keep],
                    article_ids=batch["article_ids"][keep.numpy()], rows=batch["rows"][lo:lo + pairs])
        out.append(part)
    return out


DEVICE_KINDS = (("attention", r"fmha|attention|flash"), ("gemm", r"gemm|cutlass|xmma|nvjet|cublas|matmul|splitK"),
                ("optimizer", r"multi_tensor|adam|foreach"), ("compiled (triton)", r"^triton"),
                ("copy/fill", r"copy|memcpy|memset|fill|cat"))


def profile(engine, batches, steps: int) -> None:
    """Where one step's GPU time goes: kernel time by kind, and how much of the wall time the GPU was busy."""
    import re

    from torch.profiler import ProfilerActivity, profile as torch_profile

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for step in range(steps):
            loss = engine(batches[step % len(batches)])
            engine.backward(loss)
            engine.step()
        torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / steps * 1e3
    kinds: dict[str, float] = {}
    kernels = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
    for e in kernels:
        kind = next((k for k, pattern in DEVICE_KINDS if re.search(pattern, e.key, re.I)), "other element-wise")
        kinds[kind] = kinds.get(kind, 0.0) + e.self_device_time_total / 1e3 / steps
    busy = sum(kinds.values())
    print(f"profile, per step: wall {wall:.1f} ms, GPU busy {busy:.1f} ms ({100 * busy / wall:.0f}%); "
          + ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])))
    top = sorted(kernels, key=lambda e: -e.self_device_time_total)[:12]
    for e in top:
        print(f"  {e.self_device_time_total / 1e3 / steps:7.2f} ms/step  {e.count // steps:5d}x  {e.key[:110]}")


def run(args) -> None:

    from recsys24.config import TrainConfig
    from recsys24.model_inputs.batches import Batch
    from recsys24.models.contract import ModelSpec
    from recsys24.models.registry import architecture
    from recsys24.prompts.templates import PromptConfig
    from recsys24.training.distributed import setup_distributed
    from recsys24.training.engine import make_engine

    dist = setup_distributed()
    data = torch.load(args.batches, weights_only=False)
    config = mt5_config(SIZES[args.size], dropout_rate=args.dropout, attn_implementation=args.attn)
    spec = ModelSpec("cgc", PromptConfig(template="d", history_size=data["history_size"], max_length=256), 0.4,
                     data["yes_id"], data["no_id"])
    torch.manual_seed(0)
    model = architecture("cgc").create(spec, config)
    saved = data["batches"]
    if args.pairs:
        saved = [part for b in saved for part in pair_slices(b, args.pairs)]
    batches = [Batch(**b).to(dist.device) for b in saved]
    pairs_per_batch = batches[0].num_impressions
    tc = TrainConfig(steps=args.steps, micro_batch=pairs_per_batch, grad_accum=args.grad_accum, lr=1e-4,
                     warmup_steps=10, deepspeed=args.zero, compile=args.compile,
                     gradient_checkpointing=args.checkpointing)
    bf16 = dist.device.type == "cuda"
    engine, _, _ = make_engine(model, tc, bf16)
    name = torch.cuda.get_device_name() if dist.device.type == "cuda" else "cpu"
    real = sum(int(b.attention_mask.sum()) for b in batches)
    tokens = real / sum(len(b.input_ids) for b in batches)
    padded = real / sum(b.attention_mask.numel() for b in batches)
    prompts_per_pair = len(batches[0].input_ids) / pairs_per_batch
    losses, t0, warm = [], None, min(max(20, 3 * args.grad_accum), args.steps // 2)
    for step in range(args.steps):  # one step = one micro-batch; DeepSpeed updates every grad_accum of them
        if step == warm:
            if dist.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = engine(batches[step % len(batches)])
        engine.backward(loss)
        engine.step()
        losses.append(loss.detach())
    if dist.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    losses = [float(x) for x in losses]
    pairs_s = (args.steps - warm) * pairs_per_batch / seconds
    tflops = pairs_s * prompts_per_pair * flops_per_prompt(model, tokens) / 1e12
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    mfu = f"{100 * tflops / peak:.1f}% MFU of {peak:.0f} TFLOP/s" if peak else "peak unknown"
    mem = torch.cuda.max_memory_allocated() / 2**30 if dist.device.type == "cuda" else 0.0
    print(f"{name}: CGc mt5-{args.size} random, DeepSpeed {args.zero}, {'bf16' if bf16 else 'fp32'}, "
          f"attention {args.attn}, dropout {args.dropout}, {'compiled' if args.compile else 'eager'}"
          f"{', activations recomputed' if args.checkpointing else ''}; "
          f"{pairs_per_batch} pairs x {prompts_per_pair:.0f} prompts x {tokens:.0f} tokens per micro-batch "
          f"({100 * padded:.0f}% of the padded batch is real tokens), grad_accum {args.grad_accum}; "
          f"{args.steps} micro-batches, loss {losses[0]:.3f} -> {sum(losses[-20:]) / len(losses[-20:]):.3f}; "
          f"{pairs_s:,.0f} pairs/s = {pairs_s * prompts_per_pair:,.0f} prompts/s, {tflops:.1f} TFLOP/s, {mfu}; "
          f"peak memory {mem:.1f} GiB", flush=True)
    if args.profile and dist.device.type == "cuda":
        profile(engine, batches, args.profile)
    sys.stdout.flush()
    os._exit(0)  # skip DeepSpeed's process-group teardown at exit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    s = sub.add_parser("save")
    s.add_argument("--pairs", required=True, help="prepared train split")
    s.add_argument("--out", required=True)
    s.add_argument("--batches", type=int, default=16)
    s.add_argument("--micro-batch", type=int, default=32, help="training pairs (1 clicked + K not) per step")
    s.add_argument("--history-size", type=int, default=4)
    r = sub.add_parser("run")
    r.add_argument("--batches", required=True)
    r.add_argument("--size", choices=list(SIZES), default="base")
    r.add_argument("--steps", type=int, default=300)
    r.add_argument("--zero", default="zero2", help="DeepSpeed config under configs/deepspeed/")
    r.add_argument("--pairs", type=int, default=0, help="split the saved batches into micro-batches of this many pairs")
    r.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimiser step")
    r.add_argument("--compile", action="store_true", help="train.compile: torch.compile each mT5 block")
    r.add_argument("--checkpointing", action="store_true",
                   help="train.gradient_checkpointing (MFU still counts only the model's FLOPs, not the recompute)")
    r.add_argument("--attn", default="sdpa", choices=["sdpa", "eager", "flex_attention"], help="mT5 attention kernel")
    r.add_argument("--dropout", type=float, default=0.1, help="mT5 dropout_rate (flex_attention needs 0)")
    r.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="then profile this many steps on the GPU: kernel time by kind, GPU busy fraction")
    args = ap.parse_args()
    save(args) if args.step == "save" else run(args)


if __name__ == "__main__":
    main()
