"""Benchmark: scoring and training speed of CG, CGc, QA, QA+ at real mT5 sizes (random weights).

Two steps, so the GPU side needs only torch and transformers (no polars)::

    # here: assemble real prompts from prepared splits into a batch file
    python benchmarks/bench_models.py save --prepared PREP_VAL --pairs PREP_TRAIN --out runs/bench_batches.pt
    # on the GPU machine
    python benchmarks/bench_models.py run --batches runs/bench_batches.pt --size base --dtype bf16

``run`` builds each architecture on a randomly initialised mT5 of the given
size (the public google/mt5-* dimensions, 250,112-token vocabulary), then
prints scoring throughput in (impression, candidate) pairs/s over the saved
validation impressions (templates d for CG/CGc/QA, e for QA+) and training
throughput (loss + backward + AdamW step) over the saved training pairs.
Anchor (FACTS.md, one H100, 256-token prompts): mt5-base bf16 CGc ≈ 1,634 pairs/s.
"""

from __future__ import annotations

import argparse
import time

import torch

MT5_SIZES = {  # d_model, d_ff, d_kv, heads, layers (public google/mt5-* configs)
    "tiny": (64, 128, 16, 4, 2),  # a CPU smoke run of this script
    "small": (512, 1024, 64, 6, 8),
    "base": (768, 2048, 64, 12, 12),
    "large": (1024, 2816, 64, 16, 24),
}


def mt5_config(dims: tuple[int, int, int, int, int], vocab: int = 250112, **extra):
    """A random-init MT5Config with google/mt5-*'s layout at ``dims`` (d_model, d_ff, d_kv, heads, layers)."""
    from transformers import MT5Config

    d_model, d_ff, d_kv, heads, layers = dims
    return MT5Config(vocab_size=vocab, d_model=d_model, d_ff=d_ff, d_kv=d_kv, num_heads=heads, num_layers=layers,
                     num_decoder_layers=layers, feed_forward_proj="gated-gelu", decoder_start_token_id=0, **extra)


TEMPLATE = {"cg": "d", "cgc": "d", "qa": "d", "qa+": "e"}


def save(args) -> None:
    import tempfile

    from recsys24.data.prepared import open_prepared
    from recsys24.model_inputs.prompt_collator import PromptCollator
    from recsys24.prompts.article_tokens import build_token_table
    from recsys24.prompts.templates import PromptConfig
    from recsys24.prompts.tokenizer import offline_tokenizer

    val, train = open_prepared(args.prepared), open_prepared(args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        tok = offline_tokenizer(val.articles(), tmp)
    out = {"yes_id": tok.convert_tokens_to_ids("▁ja"), "no_id": tok.convert_tokens_to_ids("▁nej")}
    for template in ("d", "e"):
        prompt = PromptConfig(template=template, max_length=512 if template == "e" else 256)
        collate = PromptCollator(build_token_table(val.articles(), tok, prompt), prompt)
        score = [collate(f) for f, _ in zip(val.iter_impressions(batch_rows=args.score_rows), range(args.batches))]
        fit = [collate(f) for f, _ in zip(train.iter_pairs(batch_rows=args.train_rows), range(args.batches))]
        out[template] = {"score": [vars(b) for b in score], "train": [vars(b) for b in fit]}
        print(f"template {template}: {sum(len(b.group) for b in score):,} scoring pairs, "
              f"{sum(len(b.group) for b in fit):,} training pairs")
    torch.save(out, args.out)


def run(args) -> None:

    from recsys24.model_inputs.batches import Batch
    from recsys24.models.contract import ModelSpec
    from recsys24.models.registry import architecture
    from recsys24.prompts.templates import PromptConfig

    data = torch.load(args.batches, weights_only=False)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = mt5_config(MT5_SIZES[args.size], dropout_rate=0.1)
    # transformers 5.x ties a random mT5's LM head to the input embedding (MT5Config forces it);
    # google/mt5-* checkpoints keep theirs separate: CG's parameter count here lacks those 192M (base)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    print(f"device {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}, mt5-{args.size} random, {args.dtype}")
    for name in args.archs.split(","):
        template = TEMPLATE[name]
        spec = ModelSpec(name, PromptConfig(template=template, max_length=512 if template == "e" else 256), 0.4,
                         data["yes_id"], data["no_id"])
        model = architecture(name).create(spec, config).to(dev)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        score = [Batch(**b).to(dev) for b in data[template]["score"]]
        fit = [Batch(**b).to(dev) for b in data[template]["train"]]

        model.eval()
        with torch.no_grad(), torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
            model.score(score[0])  # warm-up
            sync(dev)
            t0 = time.perf_counter()
            pairs = sum(len(model.score(b)) for b in score)
            sync(dev)
        s_sec = time.perf_counter() - t0
        rows = sum(len(b.input_ids) for b in score)

        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        losses = []
        t0 = time.perf_counter()
        for b in fit:
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
                loss = model.loss(b)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sync(dev)
        t_sec = time.perf_counter() - t0
        t_pairs = sum(len(b.group) for b in fit)
        mem = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else 0.0
        print(f"{name:>4} ({template}) {params:7.1f}M params: score {pairs / s_sec:8,.0f} pairs/s "
              f"({rows:,} prompts); train {t_pairs / t_sec:7,.0f} pairs/s, loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
              f"peak mem {mem:.1f} GiB")
        del model, opt
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()


def sync(dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    s = sub.add_parser("save")
    s.add_argument("--prepared", required=True, help="prepared validation split (impressions with labels)")
    s.add_argument("--pairs", required=True, help="prepared train split (training pairs)")
    s.add_argument("--out", required=True)
    s.add_argument("--batches", type=int, default=8)
    s.add_argument("--score-rows", type=int, default=32, help="impressions per scoring batch")
    s.add_argument("--train-rows", type=int, default=16, help="training pairs (1 + K candidates) per batch")
    r = sub.add_parser("run")
    r.add_argument("--batches", required=True)
    r.add_argument("--size", choices=list(MT5_SIZES), default="base")
    r.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    r.add_argument("--archs", default="cg,cgc,qa,qa+")
    args = ap.parse_args()
    save(args) if args.step == "save" else run(args)


if __name__ == "__main__":
    main()
