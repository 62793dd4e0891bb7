"""What a newcomer reads: config errors that name the key and where it came from, wrong folders that say
which folder is wanted and which command makes it, and help text on every option that needs one."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CGH = ROOT / "configs" / "tiny" / "cgh_d.yaml"


def error_line(result) -> str:
    """The one ``error:`` line of a refused command (exit code 2, no traceback)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


# --- config overrides -----------------------------------------------------------------------


@pytest.mark.parametrize("override, says", [
    ("train.steps=five", "error: command line: train.steps: expected an integer, got 'five'"),
    ("train.stpes=5", "error: command line: train.stpes: unknown key (known: compile, deepspeed,"),
    ("trian.steps=5", "error: command line: trian: unknown key (known: loss, model, prompt, train)"),
    ("train.compile=sometimes", "error: command line: train.compile: expected true or false, got 'sometimes'"),
    ("prompt.fields=title", "error: command line: prompt.fields: expected a list of strings or null, got 'title'"),
    ("loss.lambda=[0.4]", "error: command line: loss.lambda: expected a number, got [0.4]"),
])
def test_a_bad_override_is_one_line_naming_the_key_and_the_command_line(cli, override, says):
    assert error_line(cli("train", "--config", CGH, override)).startswith(says)


def test_a_bad_key_in_the_file_is_reported_with_the_file(cli, tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text(CGH.read_text().replace("steps: 300", "steps: three hundred"))
    assert error_line(cli("train", "--config", config)) == (
        f"error: {config}: train.steps: expected an integer, got 'three hundred'")
    config.write_text(CGH.read_text().replace("steps: 300", "stpes: 300"))
    assert error_line(cli("train", "--config", config)).startswith(f"error: {config}: train.stpes: unknown key")


def test_overrides_are_read_as_the_field_types_want():
    from recsys24.config import load_config

    config = load_config(CGH, ["train.lr=3e-4", "model.tiny.dropout_rate=0", "prompt.fields=[title, age]",
                               "train.valid_data=null"])
    assert config.train.lr == 3e-4 and isinstance(config.model.tiny.dropout_rate, float)
    assert config.prompt.fields == ("title", "age") and config.train.valid_data is None


# --- a missing or wrong folder ----------------------------------------------------------------


def test_a_config_folder_that_is_not_there_names_the_key_and_the_override_that_sets_it(cli, tiny, tmp_path):
    run, missing = tmp_path / "run", tmp_path / "no-such-dir"
    line = error_line(cli("train", "--config", CGH, "--output", run, f"train.train_data={missing}"))
    assert line == (f"error: train.train_data: {missing}: no such folder (set it with train.train_data=PATH, "
                    "a `recsys24 prepare` folder)")
    prepared = tiny["prepared"].path
    line = error_line(cli("train", "--config", CGH.with_name("cgh_f.yaml"), "--output", run,
                          f"train.train_data={prepared}", f"train.valid_data={prepared}",
                          f"train.train_features={prepared}", f"train.valid_features={missing}"))
    assert line == (f"error: train.valid_features: {missing}: no such folder (set it with "
                    "train.valid_features=PATH, a `recsys24 features` folder)")
    raw = tiny["root"] / "data"  # there, but not what the key wants: the key, then what to do
    line = error_line(cli("train", "--config", CGH, "--output", run, f"train.train_data={raw}",
                          "train.valid_data=null"))
    assert line.startswith(f"error: train.train_data: {raw}: is a raw EB-NeRD folder, not a prepared split")
    assert not run.exists()  # refused before anything is written


def test_prepare_of_a_missing_folder_says_it_wants_the_raw_eb_nerd_folder(cli, tmp_path):
    line = error_line(cli("prepare", "--data", tmp_path / "no-such-dir", "--split", "train", "--out", tmp_path / "p"))
    assert line.startswith(f"error: {tmp_path / 'no-such-dir'}: no such folder (expected the raw EB-NeRD folder")
    assert "recsys24 synth" in line


def test_evaluate_of_a_prepared_folder_names_the_raw_folder_it_came_from(tiny, cli, tmp_path):
    scores = tmp_path / "s.parquet"
    scores.write_bytes(b"")
    for data in (tiny["root"] / "prepared", tiny["prepared"].path):
        line = error_line(cli("evaluate", "--scores", scores, "--data", data, "--split", "test"))
        assert f"{data}: is prepared data (`recsys24 prepare`'s output)" in line
        assert line.endswith(f"the raw EB-NeRD folder it was prepared from: {(tiny['root'] / 'data').resolve()}")


def test_predict_of_a_raw_folder_says_to_prepare_it_first(tiny, cli, tmp_path):
    raw = tiny["root"] / "data"
    for data in (raw, raw / "test"):
        line = error_line(cli("predict", "--model", tiny["model"], "--prepared", data, "--split", "test",
                              "--out", tmp_path / "s"))
        assert f"{raw}: is a raw EB-NeRD folder, not a prepared split; run `recsys24 prepare --data {raw} " \
               "--split test --out PREP` and give PREP" in line


@pytest.mark.parametrize("command", ["predict", "predict-merge"])
def test_the_old_data_option_of_predict_names_the_new_one(cli, tiny, tmp_path, command):
    line = error_line(cli(command, "--data", tiny["prepared"].path, "--split", "test", "--out", tmp_path / "s"))
    assert line == (f"error: recsys24 {command}: give the prepared split as --prepared, not --data "
                    "(--data is the raw EB-NeRD folder of the commands that read one)")


def test_data_is_the_raw_folder_and_prepared_a_prepared_split_in_every_command():
    import click

    from recsys24.cli import main

    def commands(group, path=()):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from commands(command, path + (name,))
            else:
                yield path + (name,), command

    seen = {}
    for path, command in commands(main):
        for p in command.params:
            if isinstance(p, click.Option) and not p.hidden and p.opts[0] in ("--data", "--prepared"):
                seen.setdefault(p.opts[0], []).append(" ".join(path))
                assert p.name == {"--data": "data_dir", "--prepared": "prepared_dir"}[p.opts[0]], path
                # the raw folder's help says so, except layout's (an official download, joined into one)
                assert p.opts[0] == "--prepared" or "raw EB-NeRD" in p.help or path == ("layout",), (path, p.help)
    assert {"predict", "predict-merge", "compare", "prompts show"} <= set(seen["--prepared"])
    assert {"prepare", "features", "evaluate", "baseline", "report", "rank blend fit"} <= set(seen["--data"])


def test_predict_of_a_model_that_does_not_exist_says_so(tiny, cli, tmp_path):
    line = error_line(cli("predict", "--model", tmp_path / "runs" / "cgh_dd", "--prepared", tiny["prepared"].path,
                          "--split", "test", "--out", tmp_path / "s"))
    assert line.startswith(f"error: {tmp_path / 'runs' / 'cgh_dd'}: no such model folder (give a `recsys24 train` "
                           "run folder")


# --- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command, options", [
    ("prepare", ["--split", "--seed"]),
    ("predict", ["--shard-id", "--num-shards"]),
])
def test_every_option_has_help_text(command, options):
    import click

    from recsys24.cli import main

    params = {p.opts[0]: p for p in main.commands[command].params if isinstance(p, click.Option)}
    for option in options:
        assert params[option].help, (command, option)


def test_train_help_lists_the_shipped_configs(cli):
    text = " ".join(cli("train", "--help").output.split())
    assert "configs/tiny/" in text and "cgh_d" in text and "qaplus_e" in text
    assert "recprompt" not in text  # not a training config


# --- history: what a model reads against what prepare kept -------------------------------------


def test_a_model_reading_more_history_than_prepared_is_refused_at_train_and_predict(cli, tiny, tmp_path):
    from recsys24.data.prepare import prepare
    from recsys24.data.synth import synthesize

    synthesize(tmp_path / "data", "tiny", seed=1, splits=("train",))
    prepare(tmp_path / "data", "train", tmp_path / "train", history_size=2)
    run = tmp_path / "run"
    line = error_line(cli("train", "--config", CGH, "--output", run, f"train.train_data={tmp_path / 'train'}",
                          "train.valid_data=null"))
    assert line.startswith(f"error: {tmp_path / 'train'}: prepared with 2 history items per user, "
                           "but prompt.history_size asks for 4; prepare it again with `recsys24 prepare --data ")
    assert line.endswith(f"--split train --out {tmp_path / 'train'} --history-size 4`")
    assert not run.exists()  # refused before anything is written

    prepare(tiny["root"] / "data", "test", tmp_path / "test", history_size=2)
    line = error_line(cli("predict", "--model", tiny["model"], "--prepared", tmp_path / "test", "--out", tmp_path / "s"))
    assert f"prepared with 2 history items per user, but the model {tiny['model']} (prompt.history_size) asks for 4" \
        in line and line.endswith("--history-size 4`")
