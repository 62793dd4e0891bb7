"""Assemble prompts from token ids: every prompt is a row of (start, length) slices of the token pool.

Two layouts:

* :func:`pair_prompts` (templates a–d): one row per (impression, candidate);
  the rows of one impression share the history part, which a faster path can
  later encode once per impression.
* :func:`list_prompts` (template e): one row per impression listing all its
  candidates; an impression whose candidates do not fit ``max_length`` is cut
  into chunks of about equal size, each repeating the history part. The split
  depends on the impression alone, so scores do not depend on what else is in
  the batch.

History articles are given right-aligned (``-1`` = empty slot on the left, the
newest article in the last column). When a prompt is too long, the oldest
history articles are dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from recsys24.errors import Recsys24Error
from recsys24.prompts.article_tokens import TokenTable
from recsys24.prompts.templates import MISSING_TIME, PromptConfig, age_phrase_index


@dataclass
class Prompts:
    """Assembled prompts (numpy; the collator turns them into tensors).

    input_ids, attention_mask: int64 [R, L], right-padded with the pad id.
    candidate_row: int64 [N], the row holding each candidate (in input order).
    candidate_pos: int64 [N], list prompts only: position of the candidate's first token.
    answer_pos: int64 [R, 2], pair prompts only: positions of the "ja" and "nej" tokens.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    candidate_row: np.ndarray
    candidate_pos: np.ndarray | None = None
    answer_pos: np.ndarray | None = None


def gather_segments(pool: np.ndarray, starts: np.ndarray, lengths: np.ndarray, pad_id: int):
    """Concatenate the pool slices of each row; rows are right-padded with ``pad_id``.

    starts, lengths: int [R, S]. Returns (ids [R, L], mask [R, L], segment positions [R, S]).
    """
    lengths = lengths.astype(np.int64)
    flat_len = lengths.ravel()
    total = int(flat_len.sum())
    out_off = np.cumsum(flat_len) - flat_len
    idx = np.repeat(starts.ravel().astype(np.int64) - out_off, flat_len) + np.arange(total)
    tokens = pool[idx]
    row_len = lengths.sum(axis=1)
    rows = len(row_len)
    width = int(row_len.max()) if rows else 0
    row_start = np.cumsum(row_len) - row_len
    r = np.repeat(np.arange(rows), row_len)
    c = np.arange(total) - np.repeat(row_start, row_len)
    ids = np.full((rows, width), pad_id, dtype=np.int64)
    mask = np.zeros((rows, width), dtype=np.int64)
    ids[r, c] = tokens
    mask[r, c] = 1
    seg_pos = np.cumsum(lengths, axis=1) - lengths
    return ids, mask, seg_pos


def _word(table: TokenTable, name: str, shape) -> tuple[np.ndarray, np.ndarray]:
    s, l = table.words[name]
    return np.full(shape, s, np.int64), np.full(shape, l, np.int64)


def _article_segments(table, fields, idx: np.ndarray, ref_us: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(start, length) per field for article rows ``idx`` (any shape; -1 = empty, length 0).

    The ``age`` field is the phrase for ``ref_us - published`` (broadcast with idx).
    """
    empty = idx < 0
    safe = np.where(empty, 0, idx)
    out = []
    for f in fields:
        if f == "age":
            pub = table.published_us[safe]
            ref = np.broadcast_to(ref_us, idx.shape)
            diff = np.where((pub == MISSING_TIME) | (ref == MISSING_TIME), MISSING_TIME, ref - pub)
            k = age_phrase_index(diff)
            s, l = table.phrases[0][k], table.phrases[1][k]
        else:
            start, length = table.fields[f]
            s, l = start[safe], length[safe]
        out.append((s, np.where(empty, 0, l)))
    return out


def _history(table, prompt: PromptConfig, hist_idx: np.ndarray, ref_us: np.ndarray):
    """History segments [B, T*(F+1)] and each item's length [B, T] (fields + separator)."""
    b, t = hist_idx.shape
    segs = _article_segments(table, prompt.article_fields, hist_idx, ref_us)
    sep_s, sep_l = _word(table, "sep", (b, t))
    # items are right-aligned, so every present item but the newest is followed by a comma
    sep_l = np.where(hist_idx >= 0, sep_l, 0)
    if t:
        sep_l[:, -1] = 0
    segs.append((sep_s, sep_l))
    starts = np.stack([s for s, _ in segs], axis=2).reshape(b, -1)
    lengths = np.stack([l for _, l in segs], axis=2)
    return starts, lengths.reshape(b, -1), lengths.sum(axis=2)


def _drop_oldest(item_len: np.ndarray, excess: np.ndarray) -> np.ndarray:
    """Keep mask [B, T]: drop the oldest items until ``excess`` tokens are freed."""
    cum_before = np.cumsum(item_len, axis=1) - item_len
    return ~(cum_before < excess[:, None])


def _apply_keep(lengths: np.ndarray, keep: np.ndarray) -> np.ndarray:
    per_item = lengths.shape[1] // max(keep.shape[1], 1)
    return lengths * np.repeat(keep, per_item, axis=1)


def _too_long(prompt: PromptConfig, lengths: np.ndarray) -> None:
    worst = int(lengths.sum(axis=1).max()) if len(lengths) else 0
    if worst > prompt.max_length:
        raise Recsys24Error(
            f"prompt of {worst} tokens does not fit max_length {prompt.max_length} even without "
            "history; raise prompt.max_length or lower prompt.clip_chars"
        )


def _fit_history(table, history, before, after, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of ``before`` + history + "(ingen)" if empty + ``after``, the oldest history
    items dropped until the whole fits ``budget`` tokens (what does not fit even without history is left
    to the caller to refuse).
    """
    h_starts, h_lens, item_len = history
    none_s, none_l = _word(table, "no_history", len(h_starts))
    fixed = sum(l for _, l in before + after)
    keep = _drop_oldest(item_len, fixed + item_len.sum(axis=1) - budget)
    h_lens = _apply_keep(h_lens, keep)
    none_l = np.where(h_lens.sum(axis=1) == 0, none_l, 0)
    starts = np.column_stack([before[0][0], h_starts, none_s] + [s for s, _ in after])
    lengths = np.column_stack([before[0][1], h_lens, none_l] + [l for _, l in after])
    return starts, lengths


def _fit(table, prompt: PromptConfig, history, before, after) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_fit_history` to ``max_length``; refuses a prompt that does not fit even without history."""
    starts, lengths = _fit_history(table, history, before, after, prompt.max_length)
    _too_long(prompt, lengths)
    return starts, lengths


def pair_prompts(table: TokenTable, prompt: PromptConfig, hist_idx: np.ndarray, cand_idx: np.ndarray) -> Prompts:
    """One prompt per (history, candidate) row, templates a–d.

    hist_idx: int [P, T] article rows, right-aligned, -1 = empty. cand_idx: int [P].
    Layout: prefix, history items, "(ingen)" if none, ".", question, candidate,
    "?", "ja", "/", "nej", eos.
    """
    p = len(cand_idx)
    ref = table.published_us[cand_idx][:, None]
    h_starts, h_lens, item_len = _history(table, prompt, hist_idx, ref)
    cand = _article_segments(table, prompt.candidate_fields, cand_idx, ref[:, 0])
    before = [_word(table, "prefix", p)]
    after = [_word(table, "end_history", p), _word(table, "question", p), *cand]
    after += [_word(table, w, p) for w in ("question_end", "yes", "or", "no", "eos")]
    starts, lengths = _fit(table, prompt, (h_starts, h_lens, item_len), before, after)
    ids, mask, seg_pos = gather_segments(table.pool, starts, lengths, table.pad_id)
    yes_col = starts.shape[1] - 4  # ... "ja", "/", "nej", eos
    answer_pos = np.column_stack([seg_pos[:, yes_col], seg_pos[:, yes_col + 2]])
    return Prompts(ids, mask, candidate_row=np.arange(p, dtype=np.int64), answer_pos=answer_pos)


def history_prompts(table: TokenTable, prompt: PromptConfig, hist_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The history part alone, one row per history (architecture CGh's encoder input).

    hist_idx: int [H, T] right-aligned (-1 = empty). Layout: prefix, history
    items, "(ingen)" if none, ".", eos. The ``age`` field is left out: it is
    relative to the candidate, which CGh shows to the decoder instead, so one
    encoding serves every candidate of the user. Returns (input_ids, attention_mask).
    """
    fields = tuple(f for f in prompt.article_fields if f != "age") or ("title",)
    h = len(hist_idx)
    h_starts, h_lens, item_len = _history(table, replace(prompt, fields=fields), hist_idx, np.zeros((h, 1), np.int64))
    before = [_word(table, "prefix", h)]
    after = [_word(table, "end_history", h), _word(table, "eos", h)]
    starts, lengths = _fit(table, prompt, (h_starts, h_lens, item_len), before, after)
    ids, mask, _ = gather_segments(table.pool, starts, lengths, table.pad_id)
    return ids, mask


def article_prompts(table: TokenTable, prompt: PromptConfig, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The candidate fields of articles ``idx`` (int [A]) followed by eos: CGh's per-article input."""
    segs = _article_segments(table, prompt.candidate_fields, idx, np.zeros(len(idx), np.int64))
    segs.append(_word(table, "eos", len(idx)))
    starts = np.column_stack([s for s, _ in segs])
    lengths = np.column_stack([l for _, l in segs])
    ids, mask, _ = gather_segments(table.pool, starts, lengths, table.pad_id)
    return ids, mask


def _parts(counts: np.ndarray, cand_len: np.ndarray, sep_len: int, budget: np.ndarray):
    """Split each impression's candidates into the fewest contiguous, about equal-count parts that fit.

    counts: candidates per impression (B); cand_len: tokens per candidate (N,
    impressions in order); budget: tokens per impression (B). Parts are
    ``np.array_split``'s: the first ``n % k`` of an impression's ``k`` parts
    hold one candidate more. Returns (parts per impression [B], each
    candidate's part among its impression's [N], its place in that part [N]).
    Every candidate fits alone, so ``k`` never passes ``n``; the rare
    impression whose first guess does not fit tries one part more, all such
    impressions at once.

    >>> k, part, place = _parts(np.array([3, 2]), np.array([4, 4, 4, 9, 1]), 1, np.array([9, 11]))
    >>> k.tolist(), part.tolist(), place.tolist()
    ([2, 1], [0, 0, 1, 0, 0], [0, 1, 0, 0, 1])
    """
    n = counts.astype(np.int64)
    group = np.repeat(np.arange(n.size), n)
    j = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)  # position in the impression
    total = np.bincount(group, cand_len, minlength=n.size) + sep_len * np.maximum(n - 1, 0)
    k = np.maximum(1, np.ceil(total / budget)).astype(np.int64)
    while True:
        q, r = np.divmod(n, k)
        q_, r_ = q[group], r[group]
        big = j < r_ * (q_ + 1)  # in one of the first r parts, of q + 1 candidates
        part = np.where(big, j // np.maximum(q_ + 1, 1), r_ + (j - r_ * (q_ + 1)) // np.maximum(q_, 1))
        first = np.where(big, part * (q_ + 1), r_ * (q_ + 1) + (part - r_) * q_)
        key = np.cumsum(k) - k  # a global id per part
        sizes = np.bincount(key[group] + part, minlength=int(k.sum()))
        used = np.bincount(key[group] + part, cand_len, minlength=int(k.sum())) + sep_len * np.maximum(sizes - 1, 0)
        over = np.zeros(n.size, bool)
        np.logical_or.at(over, np.repeat(np.arange(n.size), k), used > np.repeat(budget, k))
        if not over.any():
            return k, part, j - first
        k = k + over


def list_prompts(
    table: TokenTable,
    prompt: PromptConfig,
    hist_idx: np.ndarray,
    cand_idx: np.ndarray,
    counts: np.ndarray,
    impression_us: np.ndarray,
) -> Prompts:
    """Template e: one prompt per impression listing its candidates, chunked to fit.

    hist_idx: int [B, T] right-aligned (-1 = empty). cand_idx: int [N], the
    candidates of all impressions in order; counts: int [B]. impression_us: int64
    [B], the impression times (reference of the ``age`` field). The history is
    cut (oldest first) to at most half of ``max_length``.
    """
    b = len(counts)
    history = _history(table, prompt, hist_idx, impression_us[:, None])
    head_after = [_word(table, "end_history", b), _word(table, "question_list", b)]
    head_s, head_l = _fit_history(table, history, [_word(table, "prefix", b)], head_after, prompt.max_length // 2)
    tail = [_word(table, w, b) for w in ("question_end", "eos")]
    tail_s = np.column_stack([s for s, _ in tail])
    tail_l = np.column_stack([l for _, l in tail])

    group = np.repeat(np.arange(b), counts)
    cand = _article_segments(table, prompt.candidate_fields, cand_idx, impression_us[group])
    cand_s = np.column_stack([s for s, _ in cand])
    cand_l = np.column_stack([l for _, l in cand])
    cand_len = cand_l.sum(axis=1)
    sep_s, sep_len = table.words["sep"]
    budget = prompt.max_length - head_l.sum(axis=1) - tail_l.sum(axis=1)

    too_long = cand_len > budget[group]
    if too_long.any():
        i = group[np.argmax(too_long)]
        raise Recsys24Error(
            f"a candidate of {int(cand_len[group == i].max())} tokens does not fit the "
            f"{int(budget[i])} tokens left by the history in max_length {prompt.max_length}"
        )
    # one prompt row per part: the head's segments, each candidate's fields and separator, the tail's
    k, part, place = _parts(counts, cand_len, sep_len, budget)
    row_first = np.cumsum(k) - k
    cand_row = row_first[group] + part
    impression = np.repeat(np.arange(b), k)
    size = np.bincount(cand_row, minlength=int(k.sum()))
    nh, nf, nt = head_s.shape[1], cand_s.shape[1], tail_s.shape[1]
    width = int(nh + size.max(initial=0) * (nf + 1) + nt)
    starts = np.zeros((len(size), width), np.int64)
    lengths = np.zeros((len(size), width), np.int64)
    starts[:, :nh], lengths[:, :nh] = head_s[impression], head_l[impression]
    first_seg = nh + place * (nf + 1)
    columns = first_seg[:, None] + np.arange(nf + 1)
    starts[cand_row[:, None], columns] = np.column_stack([cand_s, np.full(len(cand_s), sep_s)])
    last = place == size[cand_row] - 1  # no separator after a part's last candidate
    lengths[cand_row[:, None], columns] = np.column_stack([cand_l, np.where(last, 0, sep_len)])
    tail_columns = (nh + size * (nf + 1))[:, None] + np.arange(nt)
    rows = np.arange(len(size))[:, None]
    starts[rows, tail_columns], lengths[rows, tail_columns] = tail_s[impression], tail_l[impression]
    ids, mask, seg_pos = gather_segments(table.pool, starts, lengths, table.pad_id)
    return Prompts(ids, mask, candidate_row=cand_row, candidate_pos=seg_pos[cand_row, first_seg])


def render(tokenizer, prompts: Prompts, row: int) -> str:
    """The text of prompt ``row`` as the model sees it (special tokens left out)."""
    ids = prompts.input_ids[row][prompts.attention_mask[row].astype(bool)]
    return tokenizer.decode(ids.tolist(), skip_special_tokens=True, clean_up_tokenization_spaces=False)
