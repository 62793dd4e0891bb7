"""Benchmark: naive CGc against CGh's fast path, at contest shapes, with FLOP accounting.

    python benchmarks/bench_predict.py [--size base] [--device cuda] [--seconds 20] [--peak-tflops 989]

Random-weight mT5 of the given size (public google/mt5-* dimensions), bf16 on
GPU (fp32 on CPU), synthetic token ids at the shapes of the full EB-NeRD test
split, so it needs only torch and transformers. One run prints, side by side:

* ``cgc``: naive CGc, one 256-token (history + candidate) prompt per pair
  through the Hugging Face encoder and one decoder step — the anchor of
  FACTS.md (1,639 pairs/s on one H100);
* ``cgh-ref``: CGh through the plain Hugging Face forward (encoder once per
  impression, the encoder states repeated per candidate in the decoder);
* ``cgh-fast``: CGh through :mod:`recsys24.models.prompt.cached_decoder`, as
  ``recsys24 predict`` runs it: regular rows (history 224 tokens, 11.6
  candidates on average) and beyond-accuracy rows (250 candidates);
* the parts of the fast path alone: history encodings/s, candidate
  positions/s, article vectors/s.

For each: pairs/s, useful TFLOP/s (matmul FLOPs the path must do, padding not
counted), and the projected time for the full test split: 13,336,710 regular
rows (≈ 154.7M pairs) + 200,000 beyond-accuracy rows (50M pairs), 125,541
articles, with one history encoding per impression, per distinct (piece, user)
of row-range pieces (``--order rows``), or per distinct (batch, user) of
user-grouped pieces (``--order users``, CGh's default: one per user). The
floor lines give the split's time at 40% and 70% of ``--peak-tflops`` (H100 SXM
dense bf16: 989).

``--behaviors FILE`` measures both orders' rows per encoding on a behaviors
file (polars, user ids and in-view lengths only, no scoring); with
``--histories-per-s`` and ``--fixed-s`` (printed by a timed run) it only
projects, without a GPU:

    python benchmarks/bench_predict.py --behaviors test/behaviors.parquet --histories-per-s 4165 --fixed-s 652
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models import MT5_SIZES, mt5_config  # noqa: E402

REGULAR_ROWS, BA_ROWS, BA_CANDIDATES = 13_336_710, 200_000, 250
MEAN_CANDIDATES = 11.6
ARTICLES = 125_541
PROMPT, HISTORY, ARTICLE = 256, 224, 32  # tokens: CGc prompt, CGh history part, one article's text
ANCHOR = 1_639  # pairs/s, FACTS.md


class Flops:
    """Matmul FLOPs of mT5 pieces (2 per multiply-add; layer norms and softmax left out)."""

    def __init__(self, d, d_ff, d_kv, heads, layers):
        self.d, self.ff, self.inner, self.layers = d, d_ff, d_kv * heads, layers

    def encoder(self, tokens: int) -> float:  # one sequence of `tokens`
        per_token = 4 * self.d * self.inner + 3 * self.d * self.ff + 2 * tokens * self.inner
        return 2.0 * self.layers * tokens * per_token

    def cross_kv(self, tokens: int) -> float:  # decoder cross-attention keys/values of one encoding
        return 2.0 * self.layers * tokens * 2 * self.d * self.inner

    def position(self, memory: int, keys: int = 2) -> float:  # one decoder position
        per_layer = 6 * self.d * self.inner + 3 * self.d * self.ff + 2 * (memory + keys) * self.inner
        return 2.0 * self.layers * per_layer

    def cgc_pair(self) -> float:
        return self.encoder(PROMPT) + self.cross_kv(PROMPT) + self.position(PROMPT, 1)

    def cgh_history(self) -> float:  # encoder + cross K/V + the start position, once per history
        return self.encoder(HISTORY) + self.cross_kv(HISTORY) + self.position(HISTORY, 1)


def timed(fn, seconds: float, sync) -> tuple[float, int]:
    fn()
    sync()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        sync()
        if time.perf_counter() - t0 >= seconds:
            return (time.perf_counter() - t0) / n, n


def history_batch(rng, vocab, rows: int, counts: np.ndarray, table_size: int, device):
    """A HistoryBatch of ``rows`` distinct histories and ``counts`` candidates each (all article vectors cached)."""
    from recsys24.model_inputs.batches import HistoryBatch

    n = int(counts.sum())
    group = np.repeat(np.arange(rows), counts)
    art = rng.integers(0, table_size, n)
    uniq, inv = np.unique(art, return_inverse=True)
    t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.long, device=device)  # noqa: E731
    return HistoryBatch(
        input_ids=t(rng.integers(5, vocab, (rows, HISTORY))), attention_mask=t(np.ones((rows, HISTORY))),
        history_row=t(group), article_input_ids=t(rng.integers(5, vocab, (len(uniq), ARTICLE))),
        article_mask=t(np.ones((len(uniq), ARTICLE))), article_row=t(inv), article_table_rows=t(uniq),
        age=t(rng.integers(0, 111, n)), gap=t(rng.integers(0, 111, n)), group=t(group), labels=None,
        article_ids=art.astype(np.int32), rows=np.arange(rows), table_key="bench", table_size=table_size)


def rows_per_encoding(behaviors: str, piece_rows: int) -> float:
    """Rows per distinct (piece, user) of a behaviors file: how many impressions share an encoding."""
    import polars as pl

    users = pl.read_parquet(behaviors, columns=["user_id"]).with_row_index("i")
    pieces = users.select((pl.col("i") // piece_rows).alias("piece"), "user_id").unique().height
    print(f"{behaviors}: {users.height:,} rows, {pieces:,} distinct (piece, user) at {piece_rows:,}-row pieces: "
          f"{users.height / pieces:.2f} rows per encoding", flush=True)
    return users.height / pieces


def user_rows_per_encoding(behaviors: str, piece_rows: int, batch_size: int) -> float:
    """Rows per encoding of user-grouped predict on a behaviors file, counted as predict batches them."""
    import polars as pl

    from recsys24.inference.user_order import plan_encodings

    frame = pl.read_parquet(behaviors, columns=["user_id", "article_ids_inview"])
    plan = plan_encodings(frame["user_id"].to_numpy(), frame["article_ids_inview"].list.len().to_numpy(),
                          piece_rows, batch_size)
    print(f"{behaviors}: user-grouped pieces: {plan['rows']:,} rows, {plan['users']:,} users, "
          f"{plan['history_encodings']:,} history encodings in {plan['batches']:,} batches of {batch_size:,}+ "
          f"candidates (largest {plan['largest_batch']:,}), {plan['pieces']} pieces: "
          f"{plan['rows'] / plan['history_encodings']:.2f} rows per encoding", flush=True)
    return plan["rows"] / plan["history_encodings"]


def project(args, flops: Flops, per_encoding: float, fixed: float, cgc_pairs_per_s: float | None = None) -> None:
    """Print the full test split's projected time and FLOP floor per scenario of history encodings.

    per_encoding: seconds per history encoding; fixed: seconds of everything else
    (decoder positions, beyond-accuracy rows' positions, article vectors).
    """
    rows = REGULAR_ROWS + BA_ROWS
    pairs_total = REGULAR_ROWS * MEAN_CANDIDATES + BA_ROWS * BA_CANDIDATES
    hist_fl, pos_fl = flops.cgh_history(), flops.position(HISTORY)
    print(f"\nfull test split ({pairs_total / 1e6:,.1f}M pairs, {rows:,} rows); "
          f"--histories-per-s {1 / per_encoding:.0f} --fixed-s {fixed:.0f}:")
    if cgc_pairs_per_s:
        print(f"  {'cgc naive':<42} {pairs_total / cgc_pairs_per_s / 3600:6.2f} h")
    scenarios = [("one encoding per impression", rows),
                 (f"row pieces, {args.rows_per_encoding:.2f} rows/encoding", rows / args.rows_per_encoding),
                 (f"user pieces, {args.user_rows_per_encoding:.2f} rows/encoding",
                  rows / args.user_rows_per_encoding)]
    for label, encodings in scenarios:
        total = fixed + encodings * per_encoding
        print(f"  cgh-fast, {label:<34} {encodings / 1e6:6.2f}M encodings {total / 3600:6.2f} h  "
              f"({pairs_total / total:9,.0f} pairs/s, {pairs_total / total / ANCHOR:5.1f}x anchor)")
    for label, hists in scenarios:
        total = hists * hist_fl + pairs_total * pos_fl + ARTICLES * flops.encoder(ARTICLE)
        floor = "  ".join(f"{int(p * 100)}% peak {total / (p * args.peak_tflops * 1e12) / 60:6.1f} min" for p in (0.4, 0.7))
        print(f"  floor, {label:<34} {total / 1e15:7.1f} PFLOP: {floor}")
    if cgc_pairs_per_s:
        total = pairs_total * flops.cgc_pair()
        floor = "  ".join(f"{int(p * 100)}% peak {total / (p * args.peak_tflops * 1e12) / 3600:6.1f} h" for p in (0.4, 0.7))
        print(f"  floor, {'cgc naive':<34} {total / 1e15:7.1f} PFLOP: {floor}")


def main() -> None:

    from recsys24.model_inputs.batches import Batch
    from recsys24.models.contract import ModelSpec
    from recsys24.models.prompt.cached_decoder import cached_scores
    from recsys24.models.prompt.cgc import CGc
    from recsys24.models.prompt.cgh import CGh
    from recsys24.prompts.templates import PromptConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=list(MT5_SIZES), default="base")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seconds", type=float, default=15.0, help="timing per measurement")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--cgc-batch", type=int, default=256)
    ap.add_argument("--rows", type=int, default=512, help="impressions per CGh batch (regular rows)")
    ap.add_argument("--ba-rows", type=int, default=32, help="beyond-accuracy rows per CGh batch")
    ap.add_argument("--sdpa", action="store_true", help="attn_implementation=sdpa for the HF modules")
    ap.add_argument("--compile", action="store_true", help="torch.compile the history encoder (as predict does on CUDA)")
    ap.add_argument("--rows-per-encoding", type=float, default=2.17,
                    help="impressions sharing one history encoding in predict's row pieces (default: measured "
                         "with --behaviors on the synthetic large test split at 1M-row pieces)")
    ap.add_argument("--user-rows-per-encoding", type=float, default=16.24,
                    help="the same for user-grouped pieces (default: measured likewise)")
    ap.add_argument("--behaviors", help="measure both ratios on this behaviors.parquet (needs polars)")
    ap.add_argument("--piece-rows", type=int, default=1_000_000, help="with --behaviors: predict's piece size")
    ap.add_argument("--batch-size", type=int, default=4096, help="with --behaviors: predict's batch size (CGh)")
    ap.add_argument("--histories-per-s", type=float, help="with --fixed-s: project from these, measure nothing")
    ap.add_argument("--fixed-s", type=float, help="seconds of the split's non-encoder work (a timed run prints it)")
    ap.add_argument("--skip", default="", help="comma list of measurements to skip (cgc,cgh-ref)")
    args = ap.parse_args()

    if args.behaviors:
        args.rows_per_encoding = rows_per_encoding(args.behaviors, args.piece_rows)
        args.user_rows_per_encoding = user_rows_per_encoding(args.behaviors, args.piece_rows, args.batch_size)
    if args.histories_per_s and args.fixed_s:
        project(args, Flops(*MT5_SIZES[args.size]), 1 / args.histories_per_s, args.fixed_s)
        return
    dev = torch.device(args.device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    d, d_ff, d_kv, heads, layers = MT5_SIZES[args.size]
    vocab = 250_112 if args.size != "tiny" else 2000
    config = mt5_config(MT5_SIZES[args.size], vocab, dropout_rate=0.0)
    if args.sdpa:
        config._attn_implementation = "sdpa"
    flops = Flops(d, d_ff, d_kv, heads, layers)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"mt5-{args.size} random weights, {str(dtype)[6:]} on {name}; torch {torch.__version__}; "
          f"attention {'sdpa' if args.sdpa else 'eager'}{', compiled encoder' if args.compile else ''}", flush=True)
    rng = np.random.default_rng(0)
    results = {}
    skip = set(args.skip.split(","))

    def report(key, sec, pairs, fl):
        results[key] = (pairs / sec, fl / sec / 1e12)
        print(f"{key:>18}: {pairs / sec:12,.0f} pairs/s  {fl / sec / 1e12:7.1f} TFLOP/s  "
              f"({100 * fl / sec / 1e12 / args.peak_tflops:4.1f}% of peak)  {pairs / sec / ANCHOR:7.1f}x anchor",
              flush=True)

    with torch.inference_mode():
        if "cgc" not in skip:
            torch.manual_seed(0)
            cgc = CGc.create(ModelSpec("cgc", PromptConfig(template="d"), 0.4, 5, 6), config).to(dev, dtype).eval()
            b = args.cgc_batch
            ids = torch.as_tensor(rng.integers(5, vocab, (b, PROMPT)), device=dev)
            ar = torch.arange(b, device=dev)
            batch = Batch(ids, torch.ones_like(ids), ar, ar, None, None, None, np.zeros(b), np.arange(b))
            sec, _ = timed(lambda: cgc.score(batch), args.seconds, sync)
            report("cgc (naive)", sec, b, b * flops.cgc_pair())
            del cgc, batch

        torch.manual_seed(0)
        cgh = CGh.create(ModelSpec("cgh", PromptConfig(template="d"), 0.4, 5, 6), config).to(dev, dtype).eval()
        counts = np.minimum(np.maximum(rng.poisson(MEAN_CANDIDATES - 1, args.rows) + 1, 1), 100)
        regular = history_batch(rng, vocab, args.rows, counts, ARTICLES, dev)
        ba = history_batch(rng, vocab, args.ba_rows, np.full(args.ba_rows, BA_CANDIDATES), ARTICLES, dev)
        n_reg, n_ba = int(counts.sum()), args.ba_rows * BA_CANDIDATES
        hist_fl = flops.cgh_history()
        pos_fl = flops.position(HISTORY)
        if "cgh-ref" not in skip:
            small = history_batch(rng, vocab, 32, np.full(32, 12), ARTICLES, dev)
            sec, _ = timed(lambda: cgh.score(small), args.seconds, sync)
            report("cgh-ref (HF)", sec, 384, 32 * flops.encoder(HISTORY) + 384 * (
                flops.cross_kv(HISTORY) + 2 * flops.position(HISTORY) + flops.encoder(ARTICLE)))
        cgh.enable_fast_scoring(compile=args.compile)
        cached_scores(cgh, regular), cached_scores(cgh, ba)  # fills the article cache it then keeps
        cgh.article_cache[2][:] = True  # every article known: the steady state after the first pieces
        sec_reg, _ = timed(lambda: cached_scores(cgh, regular), args.seconds, sync)
        report("cgh-fast regular", sec_reg, n_reg, args.rows * hist_fl + n_reg * pos_fl)
        sec_ba, _ = timed(lambda: cached_scores(cgh, ba), args.seconds, sync)
        report("cgh-fast beyond", sec_ba, n_ba, args.ba_rows * hist_fl + n_ba * pos_fl)

        # the parts: encoder alone, and articles
        enc = lambda: cgh.encode(regular.input_ids, regular.attention_mask)  # noqa: E731
        sec_enc, _ = timed(enc, args.seconds, sync)
        hist_per_s = args.rows / sec_enc
        print(f"{'encoder alone':>18}: {hist_per_s:12,.0f} histories/s  "
              f"{args.rows * flops.encoder(HISTORY) / sec_enc / 1e12:7.1f} TFLOP/s", flush=True)
        arts = regular.article_input_ids[:1024]
        sec_art, _ = timed(lambda: cgh.article_vectors(arts, torch.ones_like(arts)), args.seconds / 3, sync)
        art_per_s = len(arts) / sec_art

    # projection: the regular batch time = its encodings + its decoder positions; beyond rows as measured
    per_encoding = 1 / hist_per_s
    positions = (REGULAR_ROWS * MEAN_CANDIDATES) * (sec_reg - args.rows * per_encoding) / n_reg
    beyond = BA_ROWS * BA_CANDIDATES / results["cgh-fast beyond"][0] - BA_ROWS * per_encoding
    print(f"\ndecoder positions {positions / 60:.1f} min, articles {ARTICLES / art_per_s:.0f} s")
    project(args, flops, per_encoding, positions + beyond + ARTICLES / art_per_s,
            results.get("cgc (naive)", (None,))[0])


if __name__ == "__main__":
    main()
