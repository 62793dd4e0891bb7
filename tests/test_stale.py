"""Nothing stale, nothing in sample (issue 29's probe): a model fingerprint that sees every write, checked by
predict and predict-merge; scores files that carry their provenance wherever they are copied; a run that
refuses to continue under another config; folders that lost their plan file refused, not reused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from test_messages import error_line
from test_training import train_env

from recsys24 import fingerprints
from recsys24.data.prepared import open_prepared
from recsys24.data.split import open_split
from recsys24.evaluation.scores import Provenance, SplitData, read_provenance, read_scores, write_scores
from recsys24.fingerprints import fingerprint, folder_fingerprint

ROOT = Path(__file__).resolve().parents[1]
CGH = ROOT / "configs" / "tiny" / "cgh_d.yaml"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict:
    """Tiny train and validation splits (1,500 rows each), both prepared, and validation's features."""
    from recsys24.data.prepare import prepare
    from recsys24.data.synth import synthesize
    from recsys24.features.build import build_features

    root = tmp_path_factory.mktemp("stale")
    synthesize(root / "data", "tiny", seed=3, splits=("train", "validation"))
    for split in ("train", "validation"):
        prepare(root / "data", split, root / "prep" / split)
    build_features(root / "data", "validation", root / "feat")
    return {"data": root / "data", "train": root / "prep" / "train", "validation": root / "prep" / "validation",
            "features": root / "feat"}


@pytest.fixture(scope="module")
def few(tiny, tmp_path_factory) -> Path:
    """The first 60 rows of the tiny test split, prepared: a whole split the tiny CGc scores in seconds."""
    from recsys24.data.prepare import prepare

    data = Path(shutil.copytree(tiny["root"] / "data", tmp_path_factory.mktemp("few") / "data"))
    behaviors = data / "test" / "behaviors.parquet"
    pl.read_parquet(behaviors).head(60).write_parquet(behaviors)
    prepare(data, "test", data.parent / "prepared")
    return data.parent / "prepared"


def _predict(cli, model, prepared, out, *extra):
    return cli("predict", "--model", model, "--prepared", prepared, "--split", "test", "--out", out, "--piece-rows", "50",
               *extra)


def _change_one_layer_norm(model: Path) -> str:
    """Change one LayerNorm tensor of model.safetensors in place, as a probe would; return its name."""
    from safetensors.torch import load_file, save_file

    path = model / "model.safetensors"
    tensors = load_file(str(path))
    name = next(k for k in sorted(tensors) if "layer_norm" in k)
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, str(path), metadata={"format": "pt"})
    return name


# --- a fingerprint that cannot miss a change ----------------------------------------------------


def test_one_changed_layer_norm_is_refused_by_predict_and_predict_merge(tiny, few, tmp_path, cli):
    model = Path(shutil.copytree(tiny["model"], tmp_path / "model"))
    prepared = few
    out = tmp_path / "scores"
    assert _predict(cli, model, prepared, out).exit_code == 0  # every piece scored, nothing merged yet
    _change_one_layer_norm(model)
    for result in (_predict(cli, model, prepared, out),
                   cli("predict-merge", "--prepared", prepared, "--split", "test", "--out", out)):
        line = error_line(result)
        assert f"{out}: holds scores of another run (the model's files changed since they were scored)" in line
    assert not (out / "scores.parquet").exists()


def test_the_fingerprint_sees_a_write_even_with_the_mtime_set_back(tmp_path, monkeypatch):
    """A file too large to hash whole (weights) is sampled; its times and inode still see any write."""
    monkeypatch.setattr(fingerprints, "FULL_HASH_BYTES", 1 << 20)
    folder = tmp_path / "model"
    folder.mkdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(os.urandom(4 << 20))  # 16 sampled blocks of 64 KiB cover a quarter of it
    (folder / "config.json").write_text("{}")
    before, st = folder_fingerprint(folder), weights.stat()
    with weights.open("r+b") as f:  # between the first two sampled blocks
        f.seek(100_000)
        f.write(b"\x00\x01\x02\x03")
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert weights.stat().st_size == st.st_size and weights.stat().st_mtime_ns == st.st_mtime_ns
    assert folder_fingerprint(folder) != before
    again = folder_fingerprint(folder)
    (folder / "config.json").write_text("{}")  # a small file is hashed whole: same bytes, but rewritten
    assert folder_fingerprint(folder) != again


def test_predict_refuses_pieces_whose_predict_json_was_deleted(tiny, tmp_path, cli):
    out = tmp_path / "scores"
    prepared = tiny["root"] / "prepared" / "test"
    assert _predict(cli, tiny["model"], prepared, out, "--num-shards", "30").exit_code == 0
    (out / "predict.json").unlink()
    line = error_line(_predict(cli, tiny["model"], prepared, out, "--num-shards", "30"))
    assert f"{out}: holds scored pieces but no predict.json" in line and "use a new --out folder" in line
    assert not (out / "predict.json").exists()


# --- provenance inside the scores file ----------------------------------------------------------


def test_predict_and_baselines_write_their_provenance_into_the_scores_file(tiny, few, tmp_path, cli):
    model = Path(shutil.copytree(tiny["model"], tmp_path / "model"))
    spec = json.loads((model / "recsys24_model.json").read_text())
    trained = {"split": "train", "behaviors": "123-abc"}
    (model / "recsys24_model.json").write_text(json.dumps(spec | {"origin": {"trained_on": [trained]}}))
    out = tmp_path / "scores"
    assert _predict(cli, model, few, out).exit_code == 0
    assert cli("predict-merge", "--prepared", few, "--split", "test", "--out", out).exit_code == 0
    copied = Path(shutil.copy(out / "scores.parquet", tmp_path / "elsewhere.parquet"))
    found = read_provenance(copied)
    assert found.scores == SplitData.of_split(open_split(few.parent / "data", "test"))
    assert found.trained_on == (SplitData("train", "123-abc"),) and found.scorer == f"model {model.resolve()}"

    split = open_split(tiny["root"] / "data", "test")
    assert cli("baseline", "popular", "--data", tiny["root"] / "data", "--split", "test", "--out",
               tmp_path / "popular.parquet").exit_code == 0
    assert read_provenance(tmp_path / "popular.parquet") == Provenance(SplitData.of_split(split), "baseline popular")


def _model_scores(small, path: Path, trained_on: str) -> Path:
    """A validation scores file as predict writes it for a model trained on ``trained_on`` (of the same data)."""
    from recsys24.baselines import run_baseline

    split = open_split(small["data"], "validation")
    run_baseline("random", split, path)
    trained = SplitData.of_prepared(open_prepared(small[trained_on]))
    write_scores(read_scores(path), path, Provenance(SplitData.of_split(split), "model /runs/cgh/model", (trained,)))
    return path


def test_in_sample_stacking_is_refused_wherever_the_file_and_the_data_are_copied(small, tmp_path, cli):
    from recsys24.features.build import build_features

    scores = _model_scores(small, tmp_path / "predict" / "scores.parquet", trained_on="validation")
    copied = Path(shutil.copy(scores, tmp_path / "cgh.parquet"))  # no predict.json beside it
    data_copy = Path(shutil.copytree(small["data"], tmp_path / "data-copy"))
    build_features(data_copy, "validation", tmp_path / "feat-copy")
    for features in (small["features"], tmp_path / "feat-copy"):
        line = error_line(cli("rank", "train", "--features", features, "--scores", f"cgh={copied}",
                              "--rounds", "5", "--out", tmp_path / "ranker"))
        assert f"{copied}: made by model /runs/cgh/model, which trained on the 'validation' split; " in line
        assert "stack it on features of a split it did not train on, e.g. train" in line
        assert not (tmp_path / "ranker").exists()


def test_scores_of_a_model_trained_elsewhere_stack_and_scores_of_other_data_do_not(small, tmp_path):
    from recsys24.errors import Recsys24Error
    from recsys24.features.folder import open_features
    from recsys24.ranking.data import check_out_of_sample

    features = open_features(small["features"])
    check_out_of_sample(_model_scores(small, tmp_path / "ok.parquet", trained_on="train"), features)
    other = tmp_path / "other.parquet"
    write_scores(read_scores(tmp_path / "ok.parquet"), other,
                 Provenance(SplitData("validation", "999-0123456789abcdef"), "model /runs/cgh/model", ()))
    with pytest.raises(Recsys24Error, match="scores the 'validation' split of other data than"):
        check_out_of_sample(other, features)


# --- a run refuses to continue under another config ---------------------------------------------


def _started_run(run: Path, overrides: list[str]) -> None:
    """A run folder as `recsys24 train` leaves it after its first checkpoint (header and checkpoints/latest)."""
    from recsys24.config import load_config
    from recsys24.training.runlog import write_run_header

    write_run_header(run, load_config(CGH, overrides).to_dict())
    (run / "checkpoints" / "step20").mkdir(parents=True)
    (run / "checkpoints" / "step20" / "trainer_state.json").write_text('{"step": 20}')
    (run / "checkpoints" / "latest").write_text("step20")


def test_train_refuses_to_resume_a_run_with_other_data_or_prompt(small, tmp_path, cli):
    run, base = tmp_path / "run", [f"train.train_data={small['train']}", "train.valid_data=null"]
    _started_run(run, base)
    stamp = (run / "config.yaml").stat().st_mtime_ns
    other = ["train.valid_data=null", f"train.train_data={small['validation']}"]
    line = error_line(cli("train", "--config", CGH, "--output", run, *other))
    assert line == (f"error: {run}: this run was started with train.train_data={small['train']}, not "
                    f"{small['validation']}; give --output NEW to start another run (or resume with the run's "
                    f"config, {run / 'config.yaml'})")
    line = error_line(cli("train", "--config", CGH, "--output", run, *base, "prompt.history_size=3"))
    assert "this run was started with prompt.history_size=4, not 3; give --output NEW" in line
    assert (run / "config.yaml").stat().st_mtime_ns == stamp


def test_the_same_data_at_another_path_resumes_and_data_made_again_does_not(small, tmp_path):
    from recsys24.config import load_config
    from recsys24.data.prepare import prepare
    from recsys24.errors import Recsys24Error
    from recsys24.training.runlog import check_same_run

    train = Path(shutil.copytree(small["train"], tmp_path / "train"))
    run = tmp_path / "run"
    _started_run(run, [f"train.train_data={train}", "train.valid_data=null"])
    moved = Path(shutil.copytree(train, tmp_path / "moved"))
    check_same_run(run, load_config(CGH, [f"train.train_data={moved}", "train.valid_data=null",
                                          "train.steps=900"]).to_dict())
    prepare(small["data"], "train", train, history_size=6)
    with pytest.raises(Recsys24Error, match=r"train.train_data=\S+ holds other data than when this run started"):
        check_same_run(run, load_config(CGH, [f"train.train_data={train}", "train.valid_data=null"]).to_dict())


def _train(run: Path, config: str, train_data: Path, **kwargs) -> subprocess.CompletedProcess:
    """One tiny training step with a checkpoint, in its own process (DeepSpeed's process group)."""
    return subprocess.run([sys.executable, "-m", "recsys24", "train", "--config", config, "--output", str(run),
                           f"train.train_data={train_data}", "train.valid_data=null", "train.steps=1",
                           "train.micro_batch=4", "train.warmup_steps=1"],
                          env=train_env(), capture_output=True, text=True, timeout=600, **kwargs)


def test_another_architecture_on_a_run_is_one_line(small, tmp_path, cli):
    run = tmp_path / "run"
    done = _train(run, "tiny/cgh_d", small["train"])
    assert done.returncode == 0, done.stderr[-3000:]
    line = error_line(cli("train", "--config", "tiny/cgc_d", "--output", run,
                          f"train.train_data={small['train']}", "train.valid_data=null"))
    assert "this run was started with model.architecture=cgh, not cgc; give --output NEW" in line
    # without its config file the checkpoint itself is refused, in one line, not with the state_dict's keys
    (run / "config.yaml").unlink()
    done = _train(run, "tiny/cgc_d", small["train"])
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {run / 'checkpoints' / 'step1'}: does not fit this "
                                                     "model (")


# --- a features folder whose features.json was deleted --------------------------------------------


def test_features_refuses_a_folder_whose_features_json_was_deleted(small, tmp_path, cli):
    out = Path(shutil.copytree(small["features"], tmp_path / "feat"))
    (out / "features.json").unlink()
    pieces = sorted((out / "pieces").iterdir())
    line = error_line(cli("features", "--data", small["data"], "--split", "validation", "--out", out, "--past-only"))
    assert f"{out}: holds feature pieces but no features.json" in line and "use a new --out folder" in line
    assert sorted((out / "pieces").iterdir()) == pieces and not (out / "features.json").exists()


def test_a_models_training_split_is_known_by_its_raw_behaviors_files_content(small, tmp_path):
    """What train records (the prepared split's input fingerprints) is what features.json records."""
    path = _model_scores(small, tmp_path / "s.parquet", trained_on="train")
    assert pl.read_parquet(path).height == open_split(small["data"], "validation").num_rows
    assert read_provenance(path).trained_on[0].behaviors == fingerprint(small["data"] / "train" / "behaviors.parquet")
