"""What a log file gets from long steps: plain timestamped progress lines, no ANSI codes, no wrapped paths."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from recsys24.progress import Progress, plural

LINE = re.compile(r"^\d\d:\d\d:\d\d ")  # every progress line starts with the time of day


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, soft_wrap=True, highlight=False, width=80), out


def test_progress_prints_a_line_every_tenth_and_at_the_end_with_rate_and_time_left():
    console, out = plain_console()
    now = [0.0]
    with Progress("predict shard 0/1", "impressions", out=console, quiet_s=0, clock=lambda: now[0]) as progress:
        for done in range(0, 25_001, 500):
            now[0] += 1.0
            progress(done, 25_000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # 0%, 10%, ..., 100%
    assert all(LINE.match(line) for line in lines)
    assert lines[1].endswith("predict shard 0/1: 2,500/25,000 impressions (10%), 500 impressions/s, 45s left")
    assert lines[-1].endswith("25,000/25,000 impressions (100%), 500 impressions/s")


def test_progress_prints_after_30_seconds_even_without_another_tenth():
    console, out = plain_console()
    now = [0.0]
    progress = Progress("features train", "rows", out=console, quiet_s=0, clock=lambda: now[0])
    progress(0, 1_000_000)
    for done in range(1, 40):
        now[0] += 1.0
        progress(done, 1_000_000)
    assert len(out.getvalue().splitlines()) == 2  # the start, then one after 30 s


def test_a_step_done_within_seconds_prints_no_progress_lines():
    console, out = plain_console()
    now = [0.0]
    with Progress("baseline random", "impressions", out=console, clock=lambda: now[0]) as progress:
        for done in (0, 10_000, 25_000):
            now[0] += 0.5
            progress(done, 25_000)
    assert out.getvalue() == ""


def test_progress_messages_and_long_paths_stay_on_one_line_without_ansi_codes():
    console, out = plain_console()
    path = "/scratch/project_462000000/user/recsys24/runs/" + "cgh_d_large_history_" * 6 + "/model"
    progress = Progress("train", "steps", 300, out=console)
    progress.note("loading the articles")
    progress(20, message=f"loss=0.6931 saved to {path}")
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert lines[0].endswith("train: loading the articles")
    assert len(lines) == 2 and lines[1].endswith(f"train: 20/300 steps (7%) | loss=0.6931 saved to {path}")


def test_disabled_progress_prints_nothing():
    console, out = plain_console()
    with Progress("train", "steps", 10, enabled=False, out=console) as progress:
        progress(5, message="rank 1")
    assert out.getvalue() == ""


@pytest.mark.parametrize("count, text", [(1, "1 shard"), (3, "3 shards"), (12_000, "12,000 shards")])
def test_counts_agree_with_their_nouns(count, text):
    assert plural(count, "shard") == text


def test_the_deepspeed_op_build_is_announced_only_when_the_environment_lacks_it(tmp_path):
    from recsys24.training.distributed import announce_build

    said = []
    assert announce_build("deepspeed_shm_comm", tmp_path, said.append)
    assert "building DeepSpeed's C++ op" in said[0] and str(tmp_path / "deepspeed_shm_comm") in said[0]
    (tmp_path / "deepspeed_shm_comm").mkdir()
    (tmp_path / "deepspeed_shm_comm" / "deepspeed_shm_comm.so").write_bytes(b"")
    assert not announce_build("deepspeed_shm_comm", tmp_path, said.append)
    assert len(said) == 1


def test_extensions_are_built_in_the_environment_unless_the_user_says_where(monkeypatch, tmp_path):
    import sys

    from recsys24.training.distributed import extensions_dir

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", "")  # recorded, so that the variable extensions_dir sets is undone
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    (tmp_path / "venv").mkdir()
    assert extensions_dir() == tmp_path / "venv" / "torch_extensions"
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "mine"))
    assert extensions_dir() == tmp_path / "mine"


def test_predict_in_a_log_file_prints_plain_progress_and_whole_paths(tiny, cgh_model, tmp_path, cli, monkeypatch):
    """A non-terminal predict (CliRunner's output is not a terminal) into a folder with a long path."""
    monkeypatch.setattr("recsys24.progress.QUIET_S", 0.0)  # the tiny split scores within the quiet seconds
    out = tmp_path / ("a_scores_folder_with_a_long_name_as_on_a_cluster_" * 3) / "scores"
    result = cli("predict", "--model", cgh_model, "--prepared", tiny["prepared"].path, "--split", "test",
                 "--out", out, "--piece-rows", "700", "--batch-size", "512", "--make-submission",
                 "--submission", tmp_path / "sub.zip")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    total = tiny["prepared"].num_impressions
    progress = [line for line in lines if "predict shard 0/1:" in line]
    assert progress and all(LINE.match(line) for line in progress)
    assert f"{total:,}/{total:,} impressions (100%)" in progress[-1]
    assert len(progress) >= 2
    assert any(line == f"merged {total:,} rows into {out / 'scores.parquet'}" for line in lines)


def test_predict_counts_progress_batch_by_batch_within_one_piece(tiny, cgh_model, tmp_path):
    from recsys24.inference.predict import predict_shard

    calls = []
    predict_shard(cgh_model, tiny["prepared"], tmp_path / "s", piece_rows=10_000, batch_size=1024,
                  progress=lambda done, total: calls.append((done, total)))
    total = tiny["prepared"].num_impressions
    assert calls[0] == (0, total) and calls[-1] == (total, total)  # the total is known before any work
    assert len(calls) > 3 and all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
