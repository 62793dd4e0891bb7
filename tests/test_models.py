"""The four architectures on a tiny random mT5: shapes, CG/CGc equivalence, no LM head in CGc,
QA+ batch invariance and 5/100/250 candidates, the loss by hand, training steps, save/load."""

from __future__ import annotations

import math

import pytest
import torch

from recsys24.config import config_from_dict
from recsys24.model_inputs.prompt_collator import PromptCollator as Collator
from recsys24.models.loading import build_recommender, load_recommender
from recsys24.models.loss import bpr_loss, combined_loss, listwise_nll
from recsys24.prompts.article_tokens import build_token_table

ARCHS = [("cg", "d"), ("cgc", "d"), ("qa", "d"), ("qa+", "e")]


def setup(tokenizer, articles, arch, template, lam=0.4, seed=0, max_length=256):
    torch.manual_seed(seed)
    cfg = config_from_dict(
        {"model": {"architecture": arch}, "prompt": {"template": template, "max_length": max_length}, "loss": {"lambda": lam}}
    )
    model = build_recommender(cfg, tokenizer)
    collate = Collator(build_token_table(articles, tokenizer, cfg.prompt), cfg.prompt, seed=seed)
    return model.eval(), collate


@pytest.fixture(scope="module")
def pairs(make_pairs):
    return make_pairs([[1000, 1001, 1002], [1003], []], [1010, 1011, 1012], [[1020, 1021], [1022, 1023], [1024, 1025]])


@pytest.fixture(scope="module")
def impressions(make_impressions):
    return make_impressions(
        [[1000, 1001], [1002, 1003, 1004, 1005, 1006]],
        [[1010, 1011, 1012, 1013, 1014], list(range(1030, 1037))],
        [[0, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0, 0]],
    )


@pytest.mark.parametrize("arch, template", ARCHS)
def test_each_architecture_scores_one_per_candidate(tiny_tokenizer, tiny_articles, pairs, impressions, arch, template):
    model, collate = setup(tiny_tokenizer, tiny_articles, arch, template)
    for frame, counts in ((pairs, [3, 3, 3]), (impressions, [5, 7])):
        batch = collate(frame)
        with torch.no_grad():
            scores = model.score(batch)
        assert scores.shape == (sum(counts),) and torch.isfinite(scores).all()
        assert batch.counts == counts
        assert [len(s) for s in scores.split(batch.counts)] == counts
        loss = model.loss(batch)
        assert loss.ndim == 0 and torch.isfinite(loss)


def test_cg_and_cgc_share_encoder_decoder_outputs(tiny_tokenizer, tiny_articles, impressions):
    from recsys24.models.prompt.base import first_decoder_state

    cg, collate = setup(tiny_tokenizer, tiny_articles, "cg", "d")
    cgc, _ = setup(tiny_tokenizer, tiny_articles, "cgc", "d", seed=1)
    missing, unexpected = cgc.backbone.load_state_dict(cg.backbone.state_dict(), strict=False)
    assert not missing and unexpected == ["lm_head.weight"]
    batch = collate(impressions)
    with torch.no_grad():
        h_cg, h_cgc = first_decoder_state(cg.backbone, batch), first_decoder_state(cgc.backbone, batch)
        full = cg.backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                           decoder_input_ids=torch.zeros((len(batch.input_ids), 1), dtype=torch.long),
                           output_hidden_states=True)
    assert torch.equal(h_cg, h_cgc)
    assert torch.allclose(full.decoder_hidden_states[-1][:, 0], h_cg, atol=1e-6)
    # CG's score (two LM-head rows) is log P("ja") − log P("nej") of the full softmax
    logp = torch.log_softmax(full.logits[:, 0], -1)
    expected = logp[:, cg.spec.yes_id] - logp[:, cg.spec.no_id]
    with torch.no_grad():
        assert torch.allclose(cg.score(batch), expected, atol=1e-4)
        assert torch.allclose(cg(batch, with_nll=True).scores, expected, atol=1e-4)


def test_cgc_holds_no_lm_head(tiny_tokenizer, tiny_articles, tmp_path):
    from safetensors import safe_open

    cgc, _ = setup(tiny_tokenizer, tiny_articles, "cgc", "d")
    vocab = cgc.backbone.config.vocab_size
    assert not any("lm_head" in k for k in cgc.state_dict())
    # the only vocabulary-sized matrix is the shared input embedding
    big = {k for k, p in cgc.named_parameters() if p.shape[0] == vocab}
    assert big == {"backbone.shared.weight"}
    assert dict(cgc.head.named_parameters())["weight"].shape == (1, cgc.backbone.config.d_model)
    cgc.save_pretrained(tmp_path / "m", tokenizer=tiny_tokenizer)
    with safe_open(tmp_path / "m" / "model.safetensors", "pt") as f:
        assert not any("lm_head" in k for k in f.keys())


def test_qa_plus_is_invariant_to_batch_composition_and_handles_5_100_250(tiny_tokenizer, tiny_articles, make_impressions):
    model, collate = setup(tiny_tokenizer, tiny_articles, "qa+", "e", max_length=512)
    hist = [[1000, 1001, 1002, 1003]] * 3
    inviews = [list(range(1010, 1015)), list(range(1020, 1120)), list(range(1040, 1290))]
    together = collate(make_impressions(hist, inviews))
    assert len(together.input_ids) > 3  # 100 and 250 candidates do not fit one 512-token prompt
    with torch.no_grad():
        all_scores = model.score(together).split(together.counts)
        for i in range(3):
            alone = model.score(collate(make_impressions(hist[i : i + 1], inviews[i : i + 1])))
            assert alone.shape == (len(inviews[i]),)
            assert torch.allclose(all_scores[i], alone, atol=1e-5)
        # reversed batch order: same scores per impression
        rev = collate(make_impressions(hist[::-1], inviews[::-1]))
        for a, b in zip(model.score(rev).split(rev.counts), all_scores[::-1]):
            assert torch.allclose(a, b, atol=1e-5)


def _hand_bpr(scores, labels, groups):
    terms = [
        -math.log(1 / (1 + math.exp(-(scores[i] - scores[j]))))
        for i in range(len(scores))
        for j in range(len(scores))
        if groups[i] == groups[j] and labels[i] == 1 and labels[j] == 0
    ]
    return sum(terms) / len(terms)


@pytest.mark.parametrize("lam", [0.0, 0.4, 1.0])
def test_loss_matches_hand_computed_value(lam):
    scores = torch.tensor([2.0, 0.5, -1.0, 0.3, 0.1])
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0])
    group = torch.tensor([0, 0, 0, 1, 1])
    s, y, g = scores.tolist(), labels.tolist(), group.tolist()
    bpr = _hand_bpr(s, y, g)  # pairs (2.0, 0.5), (2.0, −1.0), (0.1, 0.3)
    assert bpr == pytest.approx((math.log1p(math.exp(-1.5)) + math.log1p(math.exp(-3.0)) + math.log1p(math.exp(0.2))) / 3)
    assert float(bpr_loss(scores, group, labels)) == pytest.approx(bpr, rel=1e-6)
    nll = torch.tensor(0.7)
    assert float(combined_loss(nll, scores, group, labels, lam)) == pytest.approx((1 - lam) * 0.7 + lam * bpr, rel=1e-6)
    # QA+'s listwise NLL: −log softmax at the clicked candidate, averaged over impressions
    lse0 = math.log(sum(math.exp(v) for v in s[:3]))
    lse1 = math.log(sum(math.exp(v) for v in s[3:]))
    assert float(listwise_nll(scores, group, labels)) == pytest.approx(((lse0 - 2.0) + (lse1 - 0.1)) / 2, rel=1e-6)


@pytest.mark.parametrize("lam", [0.0, 0.4, 1.0])
def test_cgc_loss_is_bce_and_bpr_by_hand(tiny_tokenizer, tiny_articles, impressions, lam):
    model, collate = setup(tiny_tokenizer, tiny_articles, "cgc", "d", lam=lam)
    batch = collate(impressions)
    with torch.no_grad():
        s = model.score(batch).tolist()
        loss = float(model.loss(batch))
    y, g = batch.labels.tolist(), batch.group.tolist()
    bce = sum(-math.log(1 / (1 + math.exp(-v))) if t else -math.log(1 - 1 / (1 + math.exp(-v))) for v, t in zip(s, y)) / len(s)
    assert loss == pytest.approx((1 - lam) * bce + lam * _hand_bpr(s, y, g), rel=1e-5)


@pytest.mark.parametrize("arch, template", ARCHS)
def test_a_few_optimiser_steps_reduce_the_loss(tiny_tokenizer, tiny_articles, pairs, arch, template):
    model, collate = setup(tiny_tokenizer, tiny_articles, arch, template)
    batch = collate(pairs)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("arch, template", ARCHS)
def test_save_and_load_rebuild_the_same_model(tiny_tokenizer, tiny_articles, impressions, tmp_path, arch, template):
    model, collate = setup(tiny_tokenizer, tiny_articles, arch, template, lam=0.0)
    batch = collate(impressions)
    model.save_pretrained(tmp_path / "model", tokenizer=tiny_tokenizer)
    loaded, tok = load_recommender(tmp_path / "model")
    assert type(loaded) is type(model) and loaded.spec == model.spec
    assert tok.encode("ja nej", add_special_tokens=False) == tiny_tokenizer.encode("ja nej", add_special_tokens=False)
    with torch.no_grad():
        assert torch.allclose(loaded.eval().score(batch), model.score(batch), atol=1e-6)


def test_from_pretrained_on_the_base_class_loads_any_architecture(tiny_tokenizer, tiny_articles, tmp_path):
    """Model.from_pretrained finds the folder's class in the registry; an architecture, or the base of
    another family, refuses the folder."""
    from recsys24.errors import Recsys24Error
    from recsys24.models.contract import Model
    from recsys24.models.neural.base import NeuralModel
    from recsys24.models.prompt.base import PromptModel
    from recsys24.models.prompt.cgc import CGc
    from recsys24.models.prompt.qa import QA

    model, _ = setup(tiny_tokenizer, tiny_articles, "cgc", "d")
    model.save_pretrained(tmp_path / "cgc", tokenizer=tiny_tokenizer)
    for cls in (Model, PromptModel, CGc):
        loaded = cls.from_pretrained(tmp_path / "cgc")
        assert type(loaded) is CGc and loaded.spec == model.spec
    with pytest.raises(Recsys24Error, match="a cgc model folder, not qa"):
        QA.from_pretrained(tmp_path / "cgc")
    with pytest.raises(Recsys24Error, match="a cgc model folder, not one of NeuralModel"):
        NeuralModel.from_pretrained(tmp_path / "cgc")


def test_architecture_refuses_a_template_it_cannot_read(tiny_tokenizer):
    from recsys24.errors import Recsys24Error

    with pytest.raises(Recsys24Error, match="qa\\+ takes templates e"):
        build_recommender(config_from_dict({"model": {"architecture": "qa+"}, "prompt": {"template": "d"}}), tiny_tokenizer)
    with pytest.raises(Recsys24Error, match="cg takes templates a, b, c, d"):
        build_recommender(config_from_dict({"model": {"architecture": "cg"}, "prompt": {"template": "e"}}), tiny_tokenizer)


def test_pretrained_checkpoint_folder_loads_into_every_architecture(tiny_tokenizer, tmp_path):
    """The real path (hub id or folder) offline: a full mT5 checkpoint folder laid out as google/mt5-*
    ships it, with an LM head separate from the input embedding."""
    import json

    from safetensors.torch import save_file
    from transformers import MT5ForConditionalGeneration

    from recsys24.models.prompt.base import tiny_config
    from recsys24.prompts.tokenizer import load_tokenizer

    torch.manual_seed(0)
    full = MT5ForConditionalGeneration(tiny_config(len(tiny_tokenizer)))
    weights = {k: v.clone().contiguous() for k, v in full.state_dict().items() if "embed_tokens" not in k}
    weights["lm_head.weight"] = torch.randn_like(weights["shared.weight"])  # mT5 does not tie them
    (tmp_path / "mt5").mkdir()
    save_file(weights, str(tmp_path / "mt5" / "model.safetensors"), metadata={"format": "pt"})
    config = full.config.to_dict() | {"tie_word_embeddings": False, "architectures": ["MT5ForConditionalGeneration"]}
    (tmp_path / "mt5" / "config.json").write_text(json.dumps(config))
    tiny_tokenizer.save_pretrained(tmp_path / "mt5")
    tok = load_tokenizer(tmp_path / "mt5")
    q = "encoder.block.0.layer.0.SelfAttention.q.weight"
    for arch, template in ARCHS:
        cfg = config_from_dict({"model": {"architecture": arch, "backbone": str(tmp_path / "mt5")}, "prompt": {"template": template}})
        model = build_recommender(cfg, tok)
        state = model.state_dict()
        assert torch.equal(state[f"backbone.{q}"], weights[q])
        assert any("lm_head" in k for k in state) == (arch == "cg")
        assert any(k.startswith("backbone.decoder") for k in state) == (arch in ("cg", "cgc"))
    # CG keeps the checkpoint's own LM head through loading, saving and loading again
    cg = build_recommender(config_from_dict({"model": {"architecture": "cg", "backbone": str(tmp_path / "mt5")}}), tok)
    cg.save_pretrained(tmp_path / "cg")
    again = type(cg).from_folder(tmp_path / "cg", cg.spec)
    assert torch.equal(again.backbone.lm_head.weight, weights["lm_head.weight"])
    assert torch.equal(again.backbone.shared.weight, weights["shared.weight"])
