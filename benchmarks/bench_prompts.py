"""Benchmark: token table build and prompt assembly (collator) speed on a prepared split.

    python benchmarks/bench_prompts.py --prepared PREP [--templates d,e] [--batch-rows 64] [--max-batches 50]
                                       [--tokenizer DIR]

Prints the seconds to tokenise every article once, then (per template) the
collator's throughput in (impression, candidate) pairs per second over the
split's first impressions. Anchor (FACTS.md): per-pair mt5-base CGc scores
about 1,600 pairs/s on one H100, so assembly must stay far above that per CPU core.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from recsys24.data.prepared import open_prepared
from recsys24.model_inputs.prompt_collator import PromptCollator
from recsys24.prompts.article_tokens import build_token_table
from recsys24.prompts.templates import PromptConfig
from recsys24.prompts.tokenizer import offline_tokenizer
from recsys24.prompts.tokenizer import load_tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepared", required=True)
    ap.add_argument("--templates", default="d,e")
    ap.add_argument("--batch-rows", type=int, default=64)
    ap.add_argument("--max-batches", type=int, default=50)
    ap.add_argument("--tokenizer", default=None, help="mT5 hub id or folder (default: train one offline)")
    args = ap.parse_args()

    prep = open_prepared(args.prepared)
    articles = prep.articles()
    t0 = time.perf_counter()
    if args.tokenizer:
        tok = load_tokenizer(args.tokenizer)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            tok = offline_tokenizer(articles, tmp)
    print(f"tokenizer: {time.perf_counter() - t0:.1f} s (vocab {len(tok):,})")
    for template in args.templates.split(","):
        prompt = PromptConfig(template=template, max_length=512 if template == "e" else 256)
        t0 = time.perf_counter()
        table = build_token_table(articles, tok, prompt)
        built = time.perf_counter() - t0
        collate = PromptCollator(table, prompt)
        pairs = rows = tokens = 0
        t0 = time.perf_counter()
        for i, frame in enumerate(prep.iter_impressions(batch_rows=args.batch_rows)):
            if i == args.max_batches:
                break
            batch = collate(frame)
            pairs += len(batch.group)
            rows += len(batch.input_ids)
            tokens += int(batch.attention_mask.sum())
        sec = time.perf_counter() - t0
        print(f"template {template}: table of {len(articles):,} articles in {built:.2f} s; "
              f"{pairs:,} pairs -> {rows:,} prompts ({tokens / rows:.0f} tokens each) in {sec:.2f} s "
              f"= {pairs / sec:,.0f} pairs/s")


if __name__ == "__main__":
    main()
