"""Prompt templates a–e: documented forms, token table, truncation, chunking, collator, CLI, configs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from recsys24.config import config_from_dict, load_config
from recsys24.errors import Recsys24Error
from recsys24.model_inputs.candidates import right_aligned
from recsys24.model_inputs.prompt_collator import PromptCollator as Collator
from recsys24.models.registry import architecture
from recsys24.prompts.article_tokens import build_token_table
from recsys24.prompts.assemble import Prompts, list_prompts, render
from recsys24.prompts.templates import PromptConfig, age_phrase_index, age_phrases

DA = "En bruger har for nylig læst disse artikler:"
EN = "A user has recently read these articles:"
REGERING, BRONDBY, VEJR, KONGEHUS = 1000, 1001, 1002, 1003  # published 72 h, 5 h, 0 h, 30 h before T0


def texts(tokenizer, articles, prompt, frame):
    batch = Collator(build_token_table(articles, tokenizer, prompt), prompt)(frame)
    p = Prompts(batch.input_ids.numpy(), batch.attention_mask.numpy(), batch.candidate_row.numpy())
    return [render(tokenizer, p, r) for r in range(len(p.input_ids))], batch


@pytest.mark.parametrize(
    "template, language, expected",
    [
        ("a", "da", f"{DA} Regeringen vil sænke skatten, Brøndby vinder derbyet. Vil brugeren læse Ny vejrudsigt: regn i hele landet? ja / nej"),
        ("b", "da", f"{DA} Skattelettelser til alle, Stor sejr i Parken. Vil brugeren læse Tag paraplyen med? ja / nej"),
        ("c", "da", f"{DA} nyheder: Regeringen vil sænke skatten, sport: Brøndby vinder derbyet. Vil brugeren læse nyheder: Ny vejrudsigt: regn i hele landet? ja / nej"),
        ("d", "da", f"{DA} (3 dage før) Regeringen vil sænke skatten, (5 timer før) Brøndby vinder derbyet. Vil brugeren læse Ny vejrudsigt: regn i hele landet? ja / nej"),
        ("a", "en", f"{EN} Regeringen vil sænke skatten, Brøndby vinder derbyet. Will the user read Ny vejrudsigt: regn i hele landet? yes / no"),
        ("d", "en", f"{EN} (3 days before) Regeringen vil sænke skatten, (5 hours before) Brøndby vinder derbyet. Will the user read Ny vejrudsigt: regn i hele landet? yes / no"),
    ],
)
def test_pair_templates_render_their_documented_form(tiny_tokenizer, tiny_articles, make_impressions, template, language, expected):
    frame = make_impressions([[REGERING, BRONDBY]], [[VEJR]])
    rendered, _ = texts(tiny_tokenizer, tiny_articles, PromptConfig(template=template, language=language), frame)
    assert rendered == [expected]


def test_template_e_lists_all_candidates(tiny_tokenizer, tiny_articles, make_impressions):
    frame = make_impressions([[REGERING, BRONDBY]], [[VEJR, KONGEHUS]])
    rendered, batch = texts(tiny_tokenizer, tiny_articles, PromptConfig(template="e"), frame)
    assert rendered == [
        f"{DA} Regeringen vil sænke skatten, Brøndby vinder derbyet. Hvilke af følgende artikler vil "
        "brugeren læse: Ny vejrudsigt: regn i hele landet, Kongehuset holder fest?"
    ]
    # each candidate position points at the first token of its title
    ids = batch.input_ids[0]
    for pos, title in zip(batch.candidate_pos.tolist(), ["Ny vejrudsigt", "Kongehuset"]):
        first = tiny_tokenizer.encode(title, add_special_tokens=False)[0]
        assert int(ids[pos]) == first


def test_no_history_empty_field_and_age_after_candidate(tiny_tokenizer, tiny_articles, make_impressions):
    frame = make_impressions([[], [REGERING, BRONDBY]], [[KONGEHUS], [KONGEHUS]])
    rendered, _ = texts(tiny_tokenizer, tiny_articles, PromptConfig(template="b"), frame)
    assert rendered[0] == f"{DA} (ingen). Vil brugeren læse -? ja / nej"
    rendered, _ = texts(tiny_tokenizer, tiny_articles, PromptConfig(template="d"), frame)
    # candidate 30 h old: Regeringen came out 42 h before it, Brøndby 25 h after it
    assert rendered[1].startswith(f"{DA} (1 dag før) Regeringen vil sænke skatten, (1 dag efter) Brøndby")


def test_age_phrases_cover_hours_days_and_unknown():
    h = 3_600_000_000
    phrases = age_phrases("da")
    got = [phrases[i].strip() for i in age_phrase_index(np.array([h // 2, 23 * h, 47 * h, 31 * 24 * h, -3 * h, -(2**63)]))]
    assert got == ["(under 1 time før)", "(23 timer før)", "(1 dag før)", "(over 30 dage før)", "(3 timer efter)", "(ukendt tid)"]


def test_articles_are_tokenised_once_and_clipped(tiny_tokenizer, tiny_articles):
    table = build_token_table(tiny_articles, tiny_tokenizer, PromptConfig(template="a", clip_chars=10))
    start, length = table.fields["title"]
    row = table.index(np.array([REGERING]))[0]
    ids = table.pool[start[row] : start[row] + length[row]].tolist()
    assert ids == tiny_tokenizer.encode("Regeringen", add_special_tokens=False)  # first 10 characters
    with pytest.raises(Recsys24Error, match="article_id 42"):
        table.index(np.array([42]))


def test_long_history_drops_oldest_items_and_keeps_the_answer(tiny_tokenizer, tiny_articles, make_impressions):
    history = list(range(1010, 1030))
    frame = make_impressions([history], [[VEJR]])
    short = PromptConfig(template="a", history_size=20, max_length=60)
    rendered, batch = texts(tiny_tokenizer, tiny_articles, short, frame)
    assert batch.attention_mask.sum() <= 60
    assert rendered[0].endswith("Vil brugeren læse Ny vejrudsigt: regn i hele landet? ja / nej")
    newest = tiny_articles.filter(tiny_articles["article_id"] == history[-1])["title"][0]
    oldest = tiny_articles.filter(tiny_articles["article_id"] == history[0])["title"][0]
    assert newest in rendered[0] and oldest not in rendered[0]
    ids = batch.input_ids[0]
    assert tiny_tokenizer.convert_ids_to_tokens([int(ids[p]) for p in batch.answer_pos[0]]) == ["▁ja", "▁nej"]


def test_template_e_chunks_250_candidates_independently_of_the_batch(tiny_tokenizer, tiny_articles):
    prompt = PromptConfig(template="e", max_length=256)
    table = build_token_table(tiny_articles, tiny_tokenizer, prompt)
    hist = np.array([[-1, 0, 1, 2], [3, 4, 5, 6]])
    many = np.arange(10, 260)
    when = np.zeros(2, dtype=np.int64)
    both = list_prompts(table, prompt, hist, np.concatenate([np.arange(10, 15), many]), np.array([5, 250]), when)
    alone = list_prompts(table, prompt, hist[1:], many, np.array([250]), when[1:])
    assert both.attention_mask.sum(1).max() <= 256
    assert len(alone.input_ids) > 3  # 250 candidates need several chunks
    rows = both.candidate_row[5:]
    assert rows.min() == 1 and np.array_equal(rows - 1, alone.candidate_row)
    assert np.array_equal(both.candidate_pos[5:], alone.candidate_pos)
    # every candidate's first title token is where the prompt says it is
    start, _ = table.fields["title"]
    assert np.array_equal(alone.input_ids[alone.candidate_row, alone.candidate_pos], table.pool[start[many]])


def _list_prompts_loop(table, prompt, hist_idx, cand_idx, counts, impression_us):
    """Template e as it was assembled before it went over whole columns: one impression at a time."""
    from recsys24.prompts import assemble as A

    def chunks(cand_len, sep_len, budget):
        n = len(cand_len)
        k = max(1, int(np.ceil((cand_len.sum() + sep_len * (n - 1)) / budget)))
        while True:
            parts = np.array_split(np.arange(n), k)
            if all(cand_len[c].sum() + sep_len * (len(c) - 1) <= budget for c in parts):
                return parts
            k += 1

    b = len(counts)
    h_starts, h_lens, item_len = A._history(table, prompt, hist_idx, impression_us[:, None])
    fixed_head = [A._word(table, "prefix", b)]
    head_after = [A._word(table, "end_history", b), A._word(table, "question_list", b)]
    tail = [A._word(table, w, b) for w in ("question_end", "eos")]
    none_s, none_l = A._word(table, "no_history", b)
    head_fixed = sum(l for _, l in fixed_head + head_after)
    keep = A._drop_oldest(item_len, head_fixed + item_len.sum(axis=1) - prompt.max_length // 2)
    h_lens = A._apply_keep(h_lens, keep)
    none_l = np.where(h_lens.sum(axis=1) == 0, none_l, 0)
    head_s = np.column_stack([fixed_head[0][0], h_starts, none_s] + [s for s, _ in head_after])
    head_l = np.column_stack([fixed_head[0][1], h_lens, none_l] + [l for _, l in head_after])
    tail_s = np.column_stack([s for s, _ in tail])
    tail_l = np.column_stack([l for _, l in tail])
    group = np.repeat(np.arange(b), counts)
    cand = A._article_segments(table, prompt.candidate_fields, cand_idx, impression_us[group])
    cand_s = np.column_stack([s for s, _ in cand])
    cand_l = np.column_stack([l for _, l in cand])
    cand_len = cand_l.sum(axis=1)
    sep_s, sep_len = table.words["sep"]
    budget = prompt.max_length - head_l.sum(axis=1) - tail_l.sum(axis=1)
    rows_s, rows_l, first_seg, cand_row = [], [], np.zeros(len(cand_idx), np.int64), np.zeros(len(cand_idx), np.int64)
    begin = np.cumsum(counts) - counts
    nf = cand_s.shape[1]
    for i in range(b):
        mine = np.arange(begin[i], begin[i] + counts[i])
        for part in chunks(cand_len[mine], sep_len, int(budget[i])) if len(mine) else [np.arange(0)]:
            c = mine[part]
            seps_l = np.full((len(c), 1), sep_len)
            if len(c):
                seps_l[-1] = 0
            s = np.concatenate([cand_s[c], np.full((len(c), 1), sep_s)], axis=1).ravel()
            l = np.concatenate([cand_l[c], seps_l], axis=1).ravel()
            cand_row[c] = len(rows_s)
            first_seg[c] = head_s.shape[1] + np.arange(len(c)) * (nf + 1)
            rows_s.append(np.concatenate([head_s[i], s, tail_s[i]]))
            rows_l.append(np.concatenate([head_l[i], l, tail_l[i]]))
    width = max(len(r) for r in rows_s)
    starts = np.zeros((len(rows_s), width), np.int64)
    lengths = np.zeros((len(rows_s), width), np.int64)
    for r, (s, l) in enumerate(zip(rows_s, rows_l)):
        starts[r, : len(s)] = s
        lengths[r, : len(l)] = l
    ids, mask, seg_pos = A.gather_segments(table.pool, starts, lengths, table.pad_id)
    return Prompts(ids, mask, candidate_row=cand_row, candidate_pos=seg_pos[cand_row, first_seg])


@pytest.mark.parametrize("fields, max_length", [(("title",), 256), (("category", "title"), 96), (("age", "title"), 160)])
def test_template_e_over_whole_columns_gives_the_token_ids_of_the_loop(tiny_tokenizer, tiny_articles, fields,
                                                                      max_length):
    """Impressions of 1 to 300 candidates, budgets that force extra chunks: the same prompts as one at a time."""
    prompt = PromptConfig(template="e", max_length=max_length, fields=fields, history_size=6)
    table = build_token_table(tiny_articles, tiny_tokenizer, prompt)
    rng = np.random.default_rng(0)
    counts = np.concatenate([[1, 300, 2], rng.integers(1, 40, 60)])
    hist = rng.integers(-1, tiny_articles.height, (counts.size, 6))
    cand = rng.integers(0, tiny_articles.height, counts.sum())
    when = rng.integers(0, 10**15, counts.size)
    new, old = list_prompts(table, prompt, hist, cand, counts, when), _list_prompts_loop(table, prompt, hist, cand,
                                                                                        counts, when)
    assert len(new.input_ids) > counts.size  # some impressions take several prompts
    for field in ("input_ids", "attention_mask", "candidate_row", "candidate_pos"):
        assert np.array_equal(getattr(new, field), getattr(old, field)), field


def test_collator_pairs_have_one_shuffled_positive(tiny_tokenizer, tiny_articles, make_pairs):
    n = 40
    frame = make_pairs([[1000, 1001]] * n, list(range(1100, 1100 + n)), [[1200, 1201, 1202, 1203]] * n)
    prompt = PromptConfig(template="a")
    batch = Collator(build_token_table(tiny_articles, tiny_tokenizer, prompt), prompt, seed=1)(frame)
    labels = batch.labels.numpy().reshape(n, 5)
    ids = batch.article_ids.reshape(n, 5)
    assert (labels.sum(1) == 1).all()
    assert (ids[labels == 1] == np.arange(1100, 1100 + n)).all()
    assert len(set(np.argmax(labels, 1))) > 1  # the clicked one is not always first
    assert batch.group.tolist() == np.repeat(np.arange(n), 5).tolist()


def test_right_aligned_keeps_the_newest(make_impressions):
    frame = make_impressions([[1, 2, 3, 4, 5], [7], []], [[1], [1], [1]])
    got = right_aligned(frame["history_article_ids"], 3)
    assert got.tolist() == [[3, 4, 5], [-1, -1, 7], [-1, -1, -1]]


def test_prompts_show_on_demo_data(cli, prepared):
    result = cli("prompts", "show", "--prepared", prepared["validation"], "--template", "d", "--n", "2")
    assert result.exit_code == 0, result.output
    assert result.output.count("En bruger har for nylig læst disse artikler:") == 2
    assert "? ja / nej" in result.output and "før)" in result.output
    result = cli("prompts", "show", "--prepared", prepared["test"], "--template", "e", "--n", "1", "--language", "en")
    assert result.exit_code == 0, result.output
    assert "Which of the following articles will the user read:" in result.output


# the model configs, one per architecture x template: configs/<arch>_<template>.yaml (and configs/tiny/)
CONFIGS = sorted(
    p for p in Path(__file__).resolve().parents[1].glob("configs/**/*.yaml")
    if re.fullmatch(r"(cg|cgc|qa|qaplus)_[a-e]", p.stem)
)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_model_config_loads_and_matches_its_name(path):
    cfg = load_config(path)
    arch, template = path.stem.split("_")
    assert cfg.model.architecture == {"qaplus": "qa+"}.get(arch, arch)
    assert cfg.prompt.template == template
    assert template in architecture(cfg.model.architecture).templates


def test_config_refuses_unknown_keys_and_bad_values():
    with pytest.raises(Recsys24Error, match="prompt.tempalte"):
        config_from_dict({"prompt": {"tempalte": "d"}})
    with pytest.raises(Recsys24Error, match="template 'f'"):
        config_from_dict({"prompt": {"template": "f"}})
    with pytest.raises(Recsys24Error, match="lambda"):
        config_from_dict({"loss": {"lambda": 1.5}})
    assert config_from_dict({"loss": {"lambda": 0.0}}).loss.lam == 0.0


def test_prompts_show_refuses_a_folder_that_is_not_prepared(cli, tmp_path):
    result = cli("prompts", "show", "--prepared", tmp_path, "--template", "a")
    assert result.exit_code == 2
    assert "not a prepared split" in result.output


def test_config_nested_sections_and_round_trip():
    cfg = config_from_dict({"model": {"architecture": "qa", "tiny": {"d_model": 32}},
                            "prompt": {"template": "b", "fields": ["category", "subtitle"]}})
    assert cfg.model.tiny.d_model == 32 and cfg.prompt.article_fields == ("category", "subtitle")
    assert config_from_dict(cfg.to_dict()) == cfg  # a run folder's resolved config reads back the same
    with pytest.raises(Recsys24Error, match="model.tiny.dmodel"):
        config_from_dict({"model": {"tiny": {"dmodel": 32}}})
