"""CGh-f: CGh whose candidate position reads the pair's feature-table row as quantile codes.

The codes are those of the features folder's own rows, the encoding travels in
the model folder (same scores after reload), fast and reference scoring agree,
and a missing or wrong features folder is refused with one line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from recsys24.data import schema as S
from recsys24.data.prepare import prepare
from recsys24.data.prepared import open_prepared
from recsys24.data.synth import synthesize
from recsys24.errors import Recsys24Error
from recsys24.features.build import build_features
from recsys24.inference import pieces as P
from recsys24.model_inputs.feature_codes import FeatureEncoding, feature_codes
from recsys24.features.folder import open_features
from recsys24.training.fitting import fit_for

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def split(tiny, tmp_path_factory):
    """Tiny train and test splits, their features, the prepared test split and a random CGh-f model folder."""
    from recsys24.config import load_config
    from recsys24.models.loading import build_recommender
    from recsys24.prompts.tokenizer import load_tokenizer

    root = tmp_path_factory.mktemp("cgh_f")
    synthesize(root / "data", "tiny", seed=2, splits=("train", "test"))
    for name in ("train", "test"):
        build_features(root / "data", name, root / "features" / name, piece_candidates=3_000)
    prepare(root / "data", "test", root / "prepared" / "test")
    tokenizer = load_tokenizer(tiny["model"])
    config = load_config(CONFIGS / "tiny" / "cgh_f.yaml",
                         [f"train.train_features={root / 'features' / 'train'}", "model.feature_buckets=8"])
    torch.manual_seed(0)
    model = build_recommender(config, tokenizer, fit_for(config, tokenizer)).eval()
    model.save_pretrained(root / "model", tokenizer=tokenizer)
    prepared = open_prepared(root / "prepared" / "test")
    return {"root": root, "model": model, "tokenizer": tokenizer, "prepared": prepared,
            "features": open_features(root / "features" / "test")}


def test_codes_are_the_quantile_buckets_of_each_pairs_own_row(split):
    features, model = split["features"], split["model"]
    encoding = FeatureEncoding.from_spec(model.spec)
    assert len(features.pieces()) > 1  # the lookup crosses pieces
    assert encoding.names == tuple(features.names) and encoding.buckets == 8
    table = pl.concat(features.iter_pieces())
    inview = pl.read_parquet(split["root"] / "data" / "test" / "behaviors.parquet", columns=[S.INVIEW])[S.INVIEW]
    articles = inview.explode().to_numpy()
    rows = table[S.ROW].to_numpy()
    pick = np.random.default_rng(0).permutation(len(rows))[:500]  # any order, any rows
    codes = feature_codes(features, encoding).lookup(rows[pick], articles[pick])
    # by hand: code = 1 + number of the feature's edges <= value, 0 for null
    values = table.select(encoding.names).to_numpy()[pick]
    finite = [np.asarray(e) for e in model.spec.feature_edges]
    expected = np.stack([np.where(np.isnan(values[:, j]), 0, 1 + (values[:, j, None] >= finite[j]).sum(1))
                         for j in range(len(finite))], axis=1)
    np.testing.assert_array_equal(codes, expected)
    assert len(np.unique(codes)) > 3  # not all one bucket


def test_features_reach_the_score_and_survive_the_model_folder(split):
    from recsys24.inference.predict import Scorer, model_features
    from recsys24.models.loading import load_recommender

    prepared, folder = split["prepared"], split["root"] / "model"
    frame = P.read_rows(prepared, 0, 40)
    loaded, tokenizer = load_recommender(folder)
    assert loaded.spec == split["model"].spec  # names, buckets and edges round-trip
    collate = loaded.make_collator(prepared.articles(), tokenizer,
                                   features=model_features(loaded, folder, prepared, split["features"].path))
    batch = collate(frame)
    with torch.no_grad():
        reference = loaded.score(batch)
        in_memory = split["model"].score(batch)
        loaded.enable_fast_scoring()
        fast = loaded.score(batch)
        batch.feature_codes = torch.zeros_like(batch.feature_codes)  # every feature null
        without = loaded.score(batch)
    torch.testing.assert_close(reference, in_memory, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast, reference, atol=1e-4, rtol=1e-4)
    assert (fast - without).abs().max() > 1e-3
    # and predict scores the split through the same path
    scorer = Scorer.load(folder, prepared, "cpu", features=split["features"].path)
    scores = scorer.score_frame(frame)
    np.testing.assert_allclose(np.concatenate(scores.to_list()), fast.numpy(), atol=1e-4)


def test_predict_refuses_missing_or_foreign_features(split, tmp_path):
    from recsys24.inference.predict import predict_shard

    prepared, folder = split["prepared"], split["root"] / "model"
    with pytest.raises(Recsys24Error, match="give --features FEAT"):
        predict_shard(folder, prepared, tmp_path / "a")
    with pytest.raises(Recsys24Error, match="features of the 'train' split .* is the 'test' split"):
        predict_shard(folder, prepared, tmp_path / "b", features=split["root"] / "features" / "train")
    # the same split made again from other behaviors: the fingerprints differ
    other = tmp_path / "other"
    shutil.copytree(split["features"].path, other)
    plan = json.loads((other / "features.json").read_text())
    plan["inputs"]["test/behaviors.parquet"] = "0-changed"
    (other / "features.json").write_text(json.dumps(plan))
    with pytest.raises(Recsys24Error, match="features of the 'test' split"):
        predict_shard(folder, prepared, tmp_path / "c", features=other)
    assert not (tmp_path / "c").exists()  # nothing written


def test_train_then_predict_reads_the_features_of_each_split(split, tmp_path):
    """`recsys24 train` codes each split's features and evaluates on them; the exported model predicts with them."""
    import os
    import subprocess
    import sys

    root = split["root"]
    prepare(root / "data", "train", tmp_path / "prepared" / "train")
    env = dict(os.environ, DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", PYTHONPATH=str(CONFIGS.parent))
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    run = tmp_path / "run"
    train = {"train_data": tmp_path / "prepared" / "train", "valid_data": tmp_path / "prepared" / "train",
             "train_features": root / "features" / "train", "valid_features": root / "features" / "train",
             "steps": 4, "eval_every": 2, "save_every": 2, "eval_impressions": 64, "warmup_steps": 1}
    done = subprocess.run([sys.executable, "-m", "recsys24", "train", "--config", "tiny/cgh_f", "--output", str(run),
                           *[f"train.{k}={v}" for k, v in train.items()]],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    spec = json.loads((run / "model" / "recsys24_model.json").read_text())
    assert spec["features"]["names"] == split["features"].names and spec["features"]["buckets"] == 32
    assert len(list((root / "features" / "train").glob("codes-*/codes.npy"))) == 1  # coded once, for both uses
    done = subprocess.run([sys.executable, "-m", "recsys24", "predict", "--model", str(run), "--prepared",
                           str(split["prepared"].path), "--split", "test", "--out", str(tmp_path / "scores"),
                           "--features", str(split["features"].path), "--make-submission",
                           "--submission", str(tmp_path / "predictions.zip")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "predictions.zip").is_file()


@pytest.fixture(scope="module")
def listwise(split):
    """A random CGh-f with every design option: rank-gauss values, one in-view layer, the listwise loss."""
    from recsys24.config import load_config
    from recsys24.models.loading import build_recommender

    root = split["root"]
    config = load_config(CONFIGS / "tiny" / "cgh_f.yaml",
                         [f"train.train_features={root / 'features' / 'train'}", "model.feature_buckets=8",
                          "model.feature_values=true", "model.inview_layers=1", "loss.listwise=true"])
    torch.manual_seed(1)
    model = build_recommender(config, split["tokenizer"], fit_for(config, split["tokenizer"])).eval()
    model.save_pretrained(root / "listwise", tokenizer=split["tokenizer"])
    return model


def test_a_reloaded_listwise_model_scores_like_the_in_memory_one(split, listwise):
    from recsys24.inference.predict import Scorer, model_features
    from recsys24.models.loading import load_recommender

    prepared, folder = split["prepared"], split["root"] / "listwise"
    loaded, tokenizer = load_recommender(folder)
    assert loaded.spec == listwise.spec and loaded.spec.inview_layers == 1 and loaded.spec.feature_values
    collate = loaded.make_collator(prepared.articles(), tokenizer,
                                   features=model_features(loaded, folder, prepared, split["features"].path))
    batch = collate(P.read_rows(prepared, 0, 40))
    assert batch.feature_values is not None and batch.feature_values.abs().max() > 0.5
    with torch.no_grad():
        reference, in_memory = loaded.score(batch), listwise.score(batch)
        loaded.enable_fast_scoring()
        fast = loaded.score(batch)
        batch.feature_values = torch.zeros_like(batch.feature_values)
        without_values = loaded.score(batch)
    torch.testing.assert_close(reference, in_memory, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast, reference, atol=1e-4, rtol=1e-4)
    assert (fast - without_values).abs().max() > 1e-3  # the values reach the score
    # predict cuts batches between impressions only: with batches of 3 candidates each impression
    # still gets a batch of its own, so its candidates see each other and nobody else
    scorer = Scorer.load(folder, prepared, "cpu", features=split["features"].path)
    small = np.concatenate(scorer.score_frame(P.read_rows(prepared, 0, 40), batch_size=3).to_list())
    np.testing.assert_allclose(small, fast.numpy(), atol=1e-4)


def test_the_candidates_of_an_impression_attend_to_each_other_and_to_no_other_impression(split, listwise):
    prepared = split["prepared"]
    collate = listwise.make_collator(prepared.articles(), split["tokenizer"], features=split["features"])
    frame = P.read_rows(prepared, 0, 6)
    alone = [listwise.score(collate(frame.slice(i, 1))) for i in range(frame.height)]
    with torch.no_grad():
        together = listwise.score(collate(frame))
        torch.testing.assert_close(together, torch.cat(alone), atol=1e-5, rtol=1e-5)
        # another candidate of the same impression changes a candidate's score
        batch = collate(frame.slice(0, 1))
        before = listwise.score(batch)
        batch.feature_codes[1:] = 0
        assert (listwise.score(batch)[0] - before[0]).abs() > 1e-4


def test_impression_frames_keep_every_candidate_of_an_impression_together(split, listwise, tmp_path):
    """train.frames=impressions streams whole impressions, and the collator turns each into one contiguous
    group holding its whole in-view list, with its labels; the listwise NLL is the softmax at the clicks."""
    from recsys24.models.loss import listwise_nll
    from recsys24.training.data import PairStream

    root = split["root"]
    prepare(root / "data", "train", tmp_path / "train")
    train = open_prepared(tmp_path / "train")
    stream = PairStream(train, seed=0, kind="impressions")
    assert stream.total == train.num_impressions
    frame = stream.micro_batch(0, 8)
    features = open_features(root / "features" / "train")
    batch = listwise.make_collator(train.articles(), split["tokenizer"], features=features)(frame)
    lengths = frame[S.INVIEW].list.len().to_list()
    assert batch.counts == lengths
    assert torch.equal(batch.group, torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths)))
    assert batch.labels.tolist() == frame[S.LABELS].explode().cast(pl.Float32).to_list()
    scores = torch.randn(len(batch.group))
    by_hand = np.mean([-torch.log_softmax(s, 0)[y > 0].mean().item()
                       for s, y in zip(scores.split(lengths), batch.labels.split(lengths)) if y.any()])
    assert listwise_nll(scores, batch.group, batch.labels).item() == pytest.approx(by_hand, rel=1e-5)
    loss = listwise.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and listwise.head.inview.layers[0].linear1.weight.grad.abs().sum() > 0


def test_the_design_options_are_refused_where_they_do_not_apply(split):
    from recsys24.config import load_config
    from recsys24.models.loading import build_recommender

    with pytest.raises(Recsys24Error, match="model.inview_layers: architecture cgc"):
        build_recommender(load_config(CONFIGS / "tiny" / "cgc_d.yaml", ["model.inview_layers=1"]), split["tokenizer"])
    with pytest.raises(Recsys24Error, match="train.frames"):
        load_config(CONFIGS / "tiny" / "cgh_f.yaml", ["train.frames=users"])


def test_building_a_cgh_f_reads_no_data(split, tmp_path):
    """The encoding is fitted by the training stage and passed in: with it, the model builds after the features
    folder is gone, and its spec holds the fitted edges; without it, a one-line refusal."""
    from recsys24.config import load_config
    from recsys24.models.loading import build_recommender

    features = tmp_path / "train_features"
    shutil.copytree(split["root"] / "features" / "train", features)
    config = load_config(CONFIGS / "tiny" / "cgh_f.yaml",
                         [f"train.train_features={features}", "model.feature_buckets=8"])
    fit = fit_for(config, split["tokenizer"])
    shutil.rmtree(features)
    model = build_recommender(config, split["tokenizer"], fit)
    digests = {FeatureEncoding.from_spec(m.spec).digest for m in (model, split["model"])}
    assert digests == {fit.encoding.digest}
    with pytest.raises(Recsys24Error, match="no feature encoding given"):
        build_recommender(config, split["tokenizer"])
