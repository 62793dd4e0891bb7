"""Issue 29's probe, the faults that gave a traceback or a weak answer: truncated shards and pieces, a full
disk under `train`, library errors, and the warnings and refusals a user needs. Each: exit 2 and one line
(or one warning), nothing half-written, nothing damaged trusted later."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from test_messages import error_line
from test_training import train_env

from recsys24.data import schema as S
from recsys24.errors import Recsys24Error


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict:
    """Tiny train and validation splits (1,500 rows each), train prepared, and validation's features in 3 pieces."""
    from recsys24.data.prepare import prepare
    from recsys24.data.synth import synthesize
    from recsys24.features.build import build_features

    root = tmp_path_factory.mktemp("faults")
    synthesize(root / "data", "tiny", seed=4, splits=("train", "validation"))
    prepare(root / "data", "train", root / "train")
    build_features(root / "data", "validation", root / "feat", piece_candidates=7_000)
    return {"data": root / "data", "train": root / "train", "features": root / "feat"}


def _cut(path: Path) -> None:
    """Keep the first half of a file, as a killed copy or a full disk leaves it."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _warnings(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("warning:")]


# --- truncated prepared shards and predict pieces -------------------------------------------------


def test_a_truncated_prepared_shard_is_one_line_before_predict_writes_anything(tiny, tmp_path, cli):
    from recsys24.data.prepare import prepare

    prepared = Path(shutil.copytree(tiny["root"] / "prepared" / "test", tmp_path / "prep"))
    shard = prepared / "impressions" / "part-00000.parquet"
    _cut(shard)
    out = tmp_path / "scores"
    line = error_line(cli("predict", "--model", tiny["model"], "--prepared", prepared, "--split", "test", "--out", out))
    data = (tiny["root"] / "data").resolve()
    assert line.startswith(f"error: {shard}: unreadable, truncated or damaged (")
    assert line.endswith(f"; run `recsys24 prepare --data {data} --split test --out {prepared} --history-size 20` "
                         "to write the prepared split again")
    assert not out.exists()
    assert not prepare(data, "test", prepared).skipped  # the command it names writes the split again


def test_a_truncated_predict_piece_is_scored_again_not_trusted(tiny, tmp_path, cli):
    out, prepared = tmp_path / "scores", tiny["root"] / "prepared" / "test"
    args = ["predict", "--model", tiny["model"], "--prepared", prepared, "--split", "test", "--out", out,
            "--piece-rows", "50", "--num-shards", "30"]
    assert cli(*args).exit_code == 0
    (piece,) = (out / "pieces").glob("rows-*.parquet")
    whole = pl.read_parquet(piece)
    _cut(piece)
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "scored 50 impressions" in result.output and "1 damaged piece scored again" in result.output
    assert pl.read_parquet(piece).equals(whole)


# --- features: a piece cut short, bad options, what prepare warns of --------------------------------


def test_a_truncated_features_piece_is_built_again_not_called_complete(small, tmp_path, cli):
    from recsys24.features.folder import open_features

    out = Path(shutil.copytree(small["features"], tmp_path / "feat"))
    piece = sorted((out / "pieces").glob("rows-*.parquet"))[1]
    whole = pl.read_parquet(piece)
    _cut(piece)
    features = open_features(out)
    command = f"recsys24 features --data {small['data'].resolve()} --split validation --out {out} " \
              "--piece-candidates 7000"
    with pytest.raises(Recsys24Error) as refused:  # what rank train and predict get from the checked reader
        features.read_piece(piece, [S.ROW])
    assert str(refused.value).startswith(f"{piece}: unreadable, truncated or damaged (")
    assert str(refused.value).endswith(f"; delete it and run `{command}` to build it again")
    result = cli(*command.split()[1:])
    assert result.exit_code == 0, result.output
    assert "already complete" not in result.output and "wrote 1 of 3 pieces" in result.output
    assert _warnings(result) == [f"warning: {out}: 1 piece cut short or damaged since written, built again"]
    assert pl.read_parquet(piece).equals(whole)


@pytest.mark.parametrize("value", ["-5", "0"])
def test_piece_candidates_below_one_is_refused(small, tmp_path, cli, value):
    out = tmp_path / "feat"
    line = error_line(cli("features", "--data", small["data"], "--split", "validation", "--out", out,
                          "--piece-candidates", value))
    assert line == f"error: --piece-candidates must be at least 1, got {value}"
    assert not out.exists()


def test_features_warns_of_unknown_inview_ids_and_late_history_as_prepare_does(small, tmp_path, cli):
    data = Path(shutil.copytree(small["data"], tmp_path / "data"))
    behaviors, history = data / "validation" / "behaviors.parquet", data / "validation" / "history.parquet"
    frame = pl.read_parquet(behaviors)
    inview = frame[S.INVIEW].to_list()
    inview[3] = inview[3][:-1] + [99_999_999]
    frame.with_columns(pl.Series(S.INVIEW, inview, pl.List(pl.Int32))).write_parquet(behaviors)
    late = frame[S.USER_ID].unique().sort().head(2)
    impressions = int(frame[S.USER_ID].is_in(late.implode()).sum())
    shifted = pl.col(S.HIST_TIME).list.eval(pl.element() + pl.duration(days=30))
    pl.read_parquet(history).with_columns(
        pl.when(pl.col(S.USER_ID).is_in(late.implode())).then(shifted).otherwise(pl.col(S.HIST_TIME))
        .alias(S.HIST_TIME)).write_parquet(history)
    result = cli("features", "--data", data, "--split", "validation", "--out", tmp_path / "feat")
    assert result.exit_code == 0, result.output
    assert _warnings(result) == [
        f"warning: {behaviors}: column 'article_ids_inview' has 1 article ids unknown to articles.parquet (first: "
        "99999999); their article features are missing (NaN)",
        f"warning: {history}: 2 users of behaviors.parquet ({impressions:,} impressions, e.g. user {late[0]}) have "
        "history times after their first impression"]


# --- train: a full disk, library errors, a cut metrics line ----------------------------------------


def _train(run: Path, train_data: Path, *overrides, max_file_bytes: int | None = None):
    """Two tiny steps with a checkpoint each, in their own process; ``max_file_bytes``: a disk that takes
    no file longer than that (RLIMIT_FSIZE: the write fails as on a full disk, errno EFBIG)."""
    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    done = subprocess.run(
        [sys.executable, "-m", "recsys24", "train", "--config", "tiny/cgh_d", "--output", str(run),
         f"train.train_data={train_data}", "train.valid_data=null", "train.steps=2", "train.save_every=1",
         "train.micro_batch=4", "train.warmup_steps=1", *overrides],
        env=train_env(), capture_output=True, text=True, timeout=600,
        preexec_fn=small_disk if max_file_bytes else None)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    return done, errors


def _one_error(done, errors) -> str:
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(errors) == 1, done.stderr[-3000:]
    return errors[0]


def test_a_full_disk_while_writing_the_tokenizer_leaves_no_tokenizer_to_trust(small, tmp_path):
    run = tmp_path / "run"
    line = _one_error(*_train(run, small["train"], max_file_bytes=100_000))  # spiece.model is ~270 KB
    assert line == f"error: {run / 'tokenizer' / 'spiece.model'}: cannot write it (File too large)"
    assert not any((run / "tokenizer").iterdir())


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_the_rerun_starts_clean(small, tmp_path):
    run = tmp_path / "run"
    line = _one_error(*_train(run, small["train"], max_file_bytes=3_000_000))  # optimiser states are ~5 MB
    assert line.startswith(f"error: {run / 'checkpoints' / 'step1'}: cannot write the checkpoint (the write "
                           "stopped short: ")
    assert line.endswith("is the disk full?); the run resumes from the start when rerun")
    assert not (run / "checkpoints" / "step1").exists() and not (run / "checkpoints" / "latest").exists()
    done, errors = _train(run, small["train"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["step"] == 2


def test_a_tokenizer_sentencepiece_refuses_is_one_line(small, tmp_path):
    run = tmp_path / "run"
    line = _one_error(*_train(run, small["train"], "model.tiny.tokenizer_vocab=10"))
    assert line.startswith(f"error: {run / 'tokenizer' / 'spiece.model'}: sentencepiece cannot train the "
                           "tokenizer (vocab_size 10): Vocabulary size is smaller than required_chars.")


def test_a_truncated_tokenizer_file_is_one_line(tiny_tokenizer, tmp_path):
    from recsys24.prompts.tokenizer import SPIECE, load_tokenizer

    folder = tmp_path / "tokenizer"
    folder.mkdir()
    (folder / SPIECE).write_bytes(Path(tiny_tokenizer.vocab_file).read_bytes()[:1000])
    with pytest.raises(Recsys24Error, match=f"{folder / SPIECE}: not a readable sentencepiece model"):
        load_tokenizer(folder)


def test_a_metrics_line_cut_by_a_full_disk_does_not_break_the_resume(tmp_path):
    from recsys24.training.runlog import RunLog

    (tmp_path / "metrics.jsonl").write_text('{"step": 10, "loss": 0.5}\n{"step": 20, "loss": 0.4}\n{"step": 3')
    RunLog(tmp_path, 20, True).close()
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 10, "loss": 0.5}\n{"step": 20, "loss": 0.4}\n'


# --- model files' mode; an empty config file -------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_model_files_take_the_umask_not_0600(tiny, tmp_path, umask, mode):
    from recsys24.models.loading import load_recommender

    model, tokenizer = load_recommender(tiny["model"])
    old = os.umask(umask)
    try:
        out = model.save_pretrained(tmp_path / "model", tokenizer=tokenizer)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert "model.safetensors" in modes and set(modes.values()) == {mode}, modes


@pytest.mark.parametrize("text", ["", "# nothing yet\n"])
def test_an_empty_config_file_is_named_not_a_missing_data_folder(tmp_path, cli, text):
    config = tmp_path / "mine.yaml"
    config.write_text(text)
    assert error_line(cli("train", "--config", config)) == (
        f"error: {config}: empty config file (expected sections model:, prompt:, loss:, train:)")
