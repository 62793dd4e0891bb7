"""Bad input and failing disks: one line, exit code 2, and nothing that looks finished.

One test (or a few) per row of issue 16's table, on the 1,500-row ``tiny``
synthetic splits, damaged by hand.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from recsys24 import io
from recsys24.data import schema as S
from recsys24.data.prepared import open_prepared
from recsys24.data.synth import synthesize
from recsys24.inference import pieces as P
from recsys24.submission import PREDICTIONS


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """Tiny validation and test splits (1,500 rows each). Treat as read-only."""
    out = tmp_path_factory.mktemp("bad") / "data"
    synthesize(out, "tiny", seed=2, splits=("validation", "test"))
    return out


@pytest.fixture
def data(tiny_data, tmp_path) -> Path:
    """A private copy of ``tiny_data`` that a test may damage."""
    return Path(shutil.copytree(tiny_data, tmp_path / "data"))


def _rewrite(path: Path, fn, statistics: bool = True) -> None:
    fn(pl.read_parquet(path)).write_parquet(path, statistics=statistics)


def _set_row(col, row, value, dtype):
    return lambda df: df.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value, dtype=dtype)).otherwise(pl.col(col)).alias(col)
    )


def _error_line(result) -> str:
    """The one ``error:`` line of a refused command; no traceback, exit code 2."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def _zip_of(path: Path, lines: list[str], newline: str = "\n") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(PREDICTIONS, newline.join(lines) + newline)
    return path


def _valid_lines(data: Path, split: str = "test") -> list[str]:
    beh = pl.read_parquet(data / split / "behaviors.parquet", columns=[S.IMPRESSION_ID, S.INVIEW])
    return [f"{i} [{','.join(str(r) for r in range(1, len(v) + 1))}]"
            for i, v in zip(beh[S.IMPRESSION_ID], beh[S.INVIEW])]


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp-" in p.name]


# --- null user_id in behaviors ------------------------------------------------------------


@pytest.mark.parametrize("statistics", [True, False], ids=["with-stats", "no-stats"])
def test_null_user_id_is_refused_by_prepare_with_file_column_and_row(data, tmp_path, cli, statistics):
    _rewrite(data / "validation" / "behaviors.parquet", _set_row(S.USER_ID, 5, None, pl.UInt32), statistics)
    out = tmp_path / "prep"
    line = _error_line(cli("prepare", "--data", data, "--split", "validation", "--out", out))
    assert "behaviors.parquet: column 'user_id' is null at row 5" in line
    assert not out.exists() and not _leftovers(tmp_path)


@pytest.mark.parametrize("command", [
    ["evaluate", "--scores", "SCORES", "--split", "validation"],
    ["baseline", "random", "--split", "validation", "--out", "SCORES"],
    ["submission", "write", "--scores", "SCORES", "--split", "validation", "--out", "OUT.zip"],
])
def test_every_command_that_opens_the_split_refuses_it_before_any_work(data, tmp_path, cli, command):
    from recsys24.baselines import run_baseline
    from recsys24.data.split import open_split

    scores = tmp_path / "scores.parquet"
    run_baseline("random", open_split(data, "validation"), scores)
    _rewrite(data / "validation" / "behaviors.parquet", _set_row(S.USER_ID, 5, None, pl.UInt32))
    stamp = scores.stat().st_mtime_ns
    args = [str(scores) if a == "SCORES" else str(tmp_path / a) if a == "OUT.zip" else a for a in command]
    line = _error_line(cli(*args, "--data", data))
    assert "column 'user_id' is null at row 5" in line
    assert scores.stat().st_mtime_ns == stamp and not (tmp_path / "OUT.zip").exists()


def test_null_article_id_inside_an_inview_list_is_refused(data, tmp_path, cli):
    _rewrite(data / "test" / "behaviors.parquet", _set_row(S.INVIEW, 7, [1, None], pl.List(pl.Int32)))
    line = _error_line(cli("prepare", "--data", data, "--split", "test", "--out", tmp_path / "prep"))
    assert "'article_ids_inview' has a null article id at row 7" in line


# --- duplicate non-zero impression_id -----------------------------------------------------


def test_duplicate_impression_id_is_refused_but_beyond_accuracy_zeros_are_not(data, tmp_path, cli):
    beh = data / "test" / "behaviors.parquet"
    ids = pl.read_parquet(beh, columns=[S.IMPRESSION_ID])[S.IMPRESSION_ID]
    assert (ids == 0).sum() == 20  # the beyond-accuracy rows share 0 and stay accepted
    good = _zip_of(tmp_path / "good.zip", _valid_lines(data))
    assert cli("submission", "validate", good, "--data", data).exit_code == 0

    _rewrite(beh, _set_row(S.IMPRESSION_ID, 9, int(ids[3]), pl.UInt32))
    bad = _zip_of(tmp_path / "dup.zip", _valid_lines(data))  # two lines for one impression
    line = _error_line(cli("submission", "validate", bad, "--data", data))
    assert f"behaviors.parquet: column 'impression_id' repeats {ids[3]} at row 9 (first at row 3" in line
    out = tmp_path / "prep"
    assert "repeats" in _error_line(cli("prepare", "--data", data, "--split", "test", "--out", out))
    assert not out.exists() and not _leftovers(tmp_path)


# --- 0-row behaviors file; evaluate with nothing to score ---------------------------------


def test_empty_behaviors_file_is_refused_everywhere(data, tmp_path, cli):
    beh = data / "validation" / "behaviors.parquet"
    _rewrite(beh, lambda df: df.head(0))
    empty_zip = _zip_of(tmp_path / "empty.zip", [], newline="")
    for args in (["prepare", "--split", "validation", "--out", tmp_path / "prep"],
                 ["evaluate", "--scores", tmp_path / "none.parquet", "--split", "validation"],
                 ["submission", "validate", empty_zip, "--split", "validation"]):
        line = _error_line(cli(*args, "--data", data))
        assert "behaviors.parquet: no rows" in line, args
    assert not (tmp_path / "prep").exists()


def test_evaluate_exits_non_zero_when_no_impression_can_be_scored(data, tmp_path, cli):
    from recsys24.baselines import run_baseline
    from recsys24.data.split import open_split

    scores = tmp_path / "scores.parquet"
    run_baseline("random", open_split(data, "validation"), scores)
    nobody = tmp_path / "users.parquet"
    pl.DataFrame({S.USER_ID: [4_000_000_000]}, schema={S.USER_ID: pl.UInt32}).write_parquet(nobody)
    result = cli("evaluate", "--scores", scores, "--data", data, "--split", "validation", "--users", nobody)
    line = _error_line(result)
    assert "no impression of" in line and "can be scored among the given users" in line
    assert "nan" not in result.output


# --- history problems: one warning line, --strict refuses ---------------------------------


def _prepare(cli, data, out, *extra):
    return cli("prepare", "--data", data, "--split", "validation", "--out", out, *extra)


def _warning_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("warning:")]


def test_users_without_history_are_one_warning_and_strict_refuses(data, tmp_path, cli):
    beh = pl.read_parquet(data / "validation" / "behaviors.parquet", columns=[S.USER_ID])
    gone = beh[S.USER_ID].unique().sort().head(3)
    impressions = int(beh[S.USER_ID].is_in(gone.implode()).sum())
    _rewrite(data / "validation" / "history.parquet", lambda df: df.filter(~pl.col(S.USER_ID).is_in(gone.implode())))

    strict_out = tmp_path / "strict"
    line = _error_line(_prepare(cli, data, strict_out, "--strict"))
    assert (f"history.parquet: 3 users of behaviors.parquet ({impressions:,} impressions, e.g. user {gone[0]}) "
            "have no row in it and get an empty history") in line
    assert "refused by --strict" in line
    assert not strict_out.exists() and not _leftovers(tmp_path)

    out = tmp_path / "prep"
    result = _prepare(cli, data, out)
    assert result.exit_code == 0, result.output
    (warning,) = _warning_lines(result)
    assert f"3 users of behaviors.parquet ({impressions:,} impressions, e.g. user {gone[0]}) have no row" in warning
    assert open_prepared(out).manifest["warnings"] == [warning.removeprefix("warning: ")]
    # A prepared folder made with warnings is not accepted by a later --strict run either.
    assert "refused by --strict" in _error_line(_prepare(cli, data, out, "--strict"))


def test_history_after_the_impression_is_one_warning_and_strict_refuses(data, tmp_path, cli):
    beh = pl.read_parquet(data / "validation" / "behaviors.parquet", columns=[S.USER_ID])
    late = beh[S.USER_ID].unique().sort().head(2)
    impressions = int(beh[S.USER_ID].is_in(late.implode()).sum())
    # 30 days forward: past every impression of the 7-day window that follows the history.
    shifted = pl.col(S.HIST_TIME).list.eval(pl.element() + pl.duration(days=30))
    _rewrite(data / "validation" / "history.parquet", lambda df: df.with_columns(
        pl.when(pl.col(S.USER_ID).is_in(late.implode())).then(shifted).otherwise(pl.col(S.HIST_TIME))
        .alias(S.HIST_TIME)))

    result = _prepare(cli, data, tmp_path / "prep")
    assert result.exit_code == 0, result.output
    (warning,) = _warning_lines(result)
    assert (f"2 users of behaviors.parquet ({impressions:,} impressions, e.g. user {late[0]}) have history "
            "times after their first impression") in warning
    line = _error_line(_prepare(cli, data, tmp_path / "strict", "--strict"))
    assert "history times after their first impression" in line
    assert not (tmp_path / "strict").exists()


def test_clean_data_prepares_without_warnings(data, tmp_path, cli):
    result = _prepare(cli, data, tmp_path / "prep", "--strict")
    assert result.exit_code == 0, result.output
    assert not _warning_lines(result)
    assert open_prepared(tmp_path / "prep").manifest["warnings"] == []


# --- --out in a read-only folder; disk full -----------------------------------------------


def test_out_under_a_regular_file_is_one_line(data, tmp_path, cli):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    out = blocker / "scores.parquet"
    line = _error_line(cli("baseline", "random", "--data", data, "--split", "test", "--out", out))
    assert f"{out}: cannot write it ({blocker} is a file, not a folder)" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder_is_one_line(data, tmp_path, cli):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = _error_line(cli("baseline", "random", "--data", data, "--split", "test", "--out", ro / "s.parquet"))
    finally:
        ro.chmod(0o755)
    assert "Permission denied" in line and not list(ro.iterdir())


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_refused_write_is_one_line_and_leaves_nothing(data, tmp_path, cli, monkeypatch, code):
    def failing(self, *args, **kwargs):  # the temporary was created; its first row group is refused
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    out = tmp_path / "out" / "scores.parquet"
    line = _error_line(cli("baseline", "random", "--data", data, "--split", "test", "--out", out))
    assert line == f"error: {out}: cannot write it ({os.strerror(code)})"
    assert not out.exists() and not _leftovers(tmp_path)


def test_disk_full_inside_prepare_leaves_no_half_prepared_folder(data, tmp_path, cli, monkeypatch):
    from polars.exceptions import ComputeError

    real = pl.DataFrame.write_parquet

    def full(self, file, *args, **kwargs):  # polars words a full disk like this
        if "impressions" in str(file):
            raise ComputeError("parquet: underlying IO error: No space left on device (os error 28)")
        return real(self, file, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    out = tmp_path / "prep"
    line = _error_line(cli("prepare", "--data", data, "--split", "validation", "--out", out))
    assert line == f"error: {out}: cannot write it (No space left on device)"
    assert not out.exists() and not _leftovers(tmp_path)


def test_an_os_error_outside_atomic_writes_is_one_line_too(data, cli, monkeypatch):
    import recsys24.baselines

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/shared/scores.parquet")

    monkeypatch.setattr(recsys24.baselines, "run_baseline", denied)
    line = _error_line(cli("baseline", "random", "--data", data, "--split", "test", "--out", "x.parquet"))
    assert line == "error: /srv/shared/scores.parquet: Permission denied"


# --- zip with CRLF line endings; markup-safe messages --------------------------------------


def test_crlf_zip_says_windows_line_endings(data, tmp_path, cli):
    bad = _zip_of(tmp_path / "crlf.zip", _valid_lines(data), newline="\r\n")
    line = _error_line(cli("submission", "validate", bad, "--data", data))
    assert "predictions.txt line 1: Windows line endings (CRLF)" in line


def test_error_messages_keep_their_square_brackets(data, tmp_path, cli):
    lines = _valid_lines(data)
    lines[2] = lines[2].replace(" ", "\t")
    line = _error_line(cli("submission", "validate", _zip_of(tmp_path / "tab.zip", lines), "--data", data))
    assert "line 3: expected 'impression_id [r1,...,rn]' with no spaces in the brackets" in line
    assert lines[2][-6:] in line  # the quoted excerpt keeps its ranks and closing bracket


# --- model weights replaced at the same path; split prepared again ------------------------


@pytest.fixture
def model_copy(tiny, tmp_path) -> Path:
    return Path(shutil.copytree(tiny["model"], tmp_path / "model"))


def _predict(cli, model, prepared, out, *extra):
    return cli("predict", "--model", model, "--prepared", prepared, "--split", "test", "--out", out,
               "--piece-rows", "50", *extra)


def test_predict_refuses_pieces_of_other_weights_at_the_same_path(tiny, model_copy, tmp_path, cli):
    from recsys24.models.loading import load_recommender

    out, zip_path = tmp_path / "scores", tmp_path / "sub.zip"
    prepared = tiny["root"] / "prepared" / "test"
    assert _predict(cli, model_copy, prepared, out, "--num-shards", "30").exit_code == 0
    assert len(P.existing_pieces(out)) == 1
    model, tokenizer = load_recommender(model_copy)  # "retrained" into the same folder
    for p in model.parameters():
        p.data.add_(0.01)
    model.save_pretrained(model_copy, tokenizer=tokenizer)
    line = _error_line(_predict(cli, model_copy, prepared, out, "--make-submission", "--submission", zip_path))
    assert f"{out}: holds scores of another run (the model's files changed since they were scored)" in line
    assert "use a new --out folder" in line
    assert not zip_path.exists() and not (out / "scores.parquet").exists()


def test_predict_and_merge_refuse_pieces_of_a_split_prepared_again(tiny, tmp_path, cli):
    from recsys24.data.prepare import prepare

    prepared = Path(shutil.copytree(tiny["root"] / "prepared" / "test", tmp_path / "prep"))
    out = tmp_path / "scores"
    assert _predict(cli, tiny["model"], prepared, out, "--num-shards", "30").exit_code == 0
    prepare(tiny["root"] / "data", "test", prepared, history_size=5)
    for result in (_predict(cli, tiny["model"], prepared, out),
                   cli("predict-merge", "--prepared", prepared, "--split", "test", "--out", out)):
        assert "the split was prepared again since they were scored" in _error_line(result)
    assert not (out / "scores.parquet").exists()


# --- a kill at the wrong moment: stale temporaries are removed on the next run -------------


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_predict_removes_temporaries_of_killed_runs_and_keeps_live_ones(tiny, tmp_path, cli):
    out = tmp_path / "scores"
    prepared = tiny["root"] / "prepared" / "test"
    assert _predict(cli, tiny["model"], prepared, out, "--num-shards", "30").exit_code == 0
    pieces = out / "pieces"
    killed = pieces / f".rows-0000000050-0000000100.parquet.tmp-{io._HOST}-{_dead_pid()}-0badc0de"
    old_style = pieces / ".rows-0000000100-0000000150.parquet.tmp-deadbeef"  # before writers were recorded
    live = pieces / f".rows-0000000150-0000000200.parquet.tmp-{io._HOST}-{os.getpid()}-1234abcd"
    merged = out / f".scores.parquet.tmp-{io._HOST}-{_dead_pid()}-5678abcd"
    for path in (killed, old_style, live, merged):
        path.write_bytes(b"half a parquet file")
    assert _predict(cli, tiny["model"], prepared, out, "--num-shards", "30").exit_code == 0
    assert not killed.exists() and not old_style.exists() and not merged.exists()
    assert live.exists()  # another shard still writing it


def test_stale_model_folders_of_killed_exports_are_removed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    killed = run / f".model.tmp-{io._HOST}-{_dead_pid()}-0badc0de"
    elsewhere_old = run / ".model.tmp-abcdef-12-0badc0de"  # another machine, untouched for two hours
    elsewhere_now = run / ".model.tmp-abcdef-13-0badc0de"  # another machine, writing right now
    for folder in (killed, elsewhere_old, elsewhere_now):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half")
    two_hours_ago = time.time() - 2 * io.STALE_AFTER_S
    os.utime(elsewhere_old, (two_hours_ago, two_hours_ago))
    assert io.remove_stale_temps(run) == 2
    assert [p.name for p in run.iterdir()] == [elsewhere_now.name]
