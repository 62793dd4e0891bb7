"""Write a randomly initialised mT5 backbone folder that ``recsys24 train`` takes as ``model.backbone``.

For timing the real training and predict paths on a GPU without the network: the public google/mt5-*
layout (``--size base``: d_model 768, 12 + 12 layers, a 250,112-token vocabulary, so the embedding and the
optimiser's work are those of mt5-base) with random weights, plus the project's offline sentencepiece
tokenizer trained on the data's articles (its ids all fall inside the vocabulary)::

    python benchmarks/gpu_backbone.py --articles DATA/articles.parquet --size base --out mt5-base-random
"""

from __future__ import annotations

import argparse
import os
import sys

import polars as pl
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models import MT5_SIZES, mt5_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", required=True, help="the data's articles.parquet (trains the tokenizer)")
    ap.add_argument("--size", choices=list(MT5_SIZES), default="base")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from recsys24.models.registry import architecture
    from recsys24.prompts.tokenizer import offline_tokenizer

    tok = offline_tokenizer(pl.read_parquet(args.articles), args.out)  # writes OUT/spiece.model
    torch.manual_seed(0)
    backbone = architecture("cgh").backbone_class(mt5_config(MT5_SIZES[args.size], dropout_rate=0.1))
    backbone.save_pretrained(args.out)
    params = sum(p.numel() for p in backbone.parameters())
    print(f"{args.out}: mt5-{args.size} layout, random weights, {params / 1e6:.0f}M parameters, "
          f"tokenizer of {len(tok):,} pieces in a vocabulary of {backbone.config.vocab_size:,}")


if __name__ == "__main__":
    main()
