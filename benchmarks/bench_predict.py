"""Benchmark: the `recsys24 predict` scoring path (collate + length bucketing + model) per architecture.

    python benchmarks/bench_predict.py --prepared PREP_TEST [--size tiny|small|base|large] \
        [--archs cg,cgc,qa,qa+] [--impressions 2000] [--batch-size 256] [--device cuda]

Builds each architecture on a randomly initialised mT5 of the given size (public
google/mt5-* dimensions; vocabulary of a tokenizer trained on the split's
articles), scores the first ``--impressions`` impressions of the prepared split
through :class:`recsys24.inference.predict.Scorer` exactly as ``recsys24
predict`` does (bf16 on GPU, fp32 on CPU), and prints pairs/s, impressions/s
and the projected time for the full contest test split (13,536,710 impressions,
≈ 204.7M pairs with the 200,000 beyond-accuracy rows of 250 candidates).
Anchor (FACTS.md): naive Hugging Face mt5-base bf16 at 256-token prompts,
1,639 pairs/s on one H100. GPU figures without polars: ``bench_models.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models import MT5_SIZES, TEMPLATE  # noqa: E402

FULL_TEST_IMPRESSIONS = 13_536_710
FULL_TEST_PAIRS = 13_336_710 * 11.6 + 200_000 * 250
ANCHOR_PAIRS_S = 1_639


def main() -> None:
    from transformers import MT5Config

    from recsys24.data.prepared import open_prepared
    from recsys24.inference.predict import Scorer
    from recsys24.models.base import ModelSpec
    from recsys24.models.loading import offline_tokenizer
    from recsys24.models.registry import architecture
    from recsys24.prompts.templates import PromptConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepared", required=True)
    ap.add_argument("--size", choices=list(MT5_SIZES), default="tiny")
    ap.add_argument("--archs", default="cg,cgc,qa,qa+")
    ap.add_argument("--impressions", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()

    prepared = open_prepared(args.prepared)
    articles = prepared.articles()
    with tempfile.TemporaryDirectory() as tmp:
        tok = offline_tokenizer(articles, tmp)
    frame = next(prepared.iter_impressions(batch_rows=args.impressions))
    pairs = int(frame["article_ids_inview"].list.len().sum())
    d_model, d_ff, d_kv, heads, layers = MT5_SIZES[args.size]
    config = MT5Config(vocab_size=len(tok), d_model=d_model, d_ff=d_ff, d_kv=d_kv, num_heads=heads,
                       num_layers=layers, num_decoder_layers=layers, feed_forward_proj="gated-gelu",
                       decoder_start_token_id=0, dropout_rate=0.0)
    for name in args.archs.split(","):
        template = TEMPLATE[name]
        spec = ModelSpec(name, PromptConfig(template=template, max_length=512 if template == "e" else 256), 0.4,
                         tok.convert_tokens_to_ids("▁ja"), tok.convert_tokens_to_ids("▁nej"))
        torch.manual_seed(0)
        scorer = Scorer.from_model(architecture(name).create(spec, config), tok, articles, args.device)
        scorer.score_frame(frame.head(50), args.batch_size)  # warm-up
        t0 = time.perf_counter()
        scorer.score_frame(frame, args.batch_size)
        if scorer.device.type == "cuda":
            torch.cuda.synchronize()
        sec = time.perf_counter() - t0
        hours = FULL_TEST_PAIRS / (pairs / sec) / 3600
        print(f"{name:>4} ({template}) mt5-{args.size} on {scorer.device.type}: {pairs / sec:9,.0f} pairs/s, "
              f"{frame.height / sec:8,.1f} impressions/s ({frame.height:,} impressions, {pairs:,} pairs); "
              f"full test split ≈ {hours:,.1f} h; {pairs / sec / ANCHOR_PAIRS_S:.2f}x the H100 anchor", flush=True)


if __name__ == "__main__":
    main()
