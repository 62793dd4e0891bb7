"""The options several commands share, declared once: one name, one meaning, one help text.

``--data`` is always the raw EB-NeRD folder (articles.parquet,
SPLIT/behaviors.parquet, SPLIT/history.parquet: what ``recsys24 synth`` or
``recsys24 layout`` writes); ``--prepared`` is always a prepared split (what
``recsys24 prepare --out`` writes), or a folder of them as SPLIT/. A command
that once took a prepared split as ``--data`` refuses that spelling with one
line naming ``--prepared`` (:func:`data_is_now_prepared`).
"""

from __future__ import annotations

import click

from recsys24.data import schema as S
from recsys24.errors import Recsys24Error

RAW_DATA_HELP = "The raw EB-NeRD folder (articles.parquet, SPLIT/behaviors.parquet), not a prepared split."
PREPARED_HELP = "A prepared split (`recsys24 prepare --out`), or a folder of them as SPLIT/."
DEFAULT_ZIP = "submission/predictions.zip"


def raw_data(help: str = RAW_DATA_HELP, required: bool = True):
    """``--data DIR`` (parameter ``data_dir``): the raw EB-NeRD folder."""
    return click.option("--data", "data_dir", required=required, type=click.Path(file_okay=False), help=help)


def prepared(help: str = PREPARED_HELP):
    """``--prepared DIR`` (parameter ``prepared_dir``): a prepared split or a folder of them."""
    return click.option("--prepared", "prepared_dir", required=True, type=click.Path(file_okay=False), help=help)


def split(default: str | None = None, choices: tuple[str, ...] = S.SPLITS, required: bool | None = None,
          help: str | None = None):
    """``--split``: one of ``choices``; required unless it has a default (or ``required=False``)."""
    return click.option("--split", type=click.Choice(list(choices)), default=default,
                        required=default is None if required is None else required, show_default=default is not None,
                        help=help or f"Which split: {', '.join(choices)}.")


def seed(help: str | None = None):
    """``--seed N`` (default 0)."""
    return click.option("--seed", type=int, default=0, show_default=True, help=help)


def shard_id():
    """``--shard-id I``: which of ``--num-shards`` this process scores."""
    return click.option("--shard-id", type=int, default=0, show_default=True,
                        help="Which shard this process scores (0 .. NUM_SHARDS-1), e.g. $SLURM_ARRAY_TASK_ID.")


def num_shards(help: str):
    """``--num-shards N`` (default 1); ``help`` says what is cut into shards and how they are merged."""
    return click.option("--num-shards", type=int, default=1, show_default=True, help=help)


def make_submission(help: str = "Also write and validate the contest zip."):
    """``--make-submission`` (a flag)."""
    return click.option("--make-submission", is_flag=True, help=help)


def submission_zip():
    """``--submission ZIP`` (parameter ``zip_path``): where ``--make-submission`` writes the contest zip."""
    return click.option("--submission", "zip_path", default=DEFAULT_ZIP, show_default=True,
                        type=click.Path(dir_okay=False), help="The contest zip --make-submission writes.")


def data_is_now_prepared():
    """A hidden ``--data`` on a command that takes ``--prepared``: the old spelling, refused in one line."""

    def refuse(ctx: click.Context, param: click.Parameter, value) -> None:
        if value is not None:
            raise Recsys24Error(f"recsys24 {ctx.info_name}: give the prepared split as --prepared, not --data "
                                "(--data is the raw EB-NeRD folder of the commands that read one)")

    return click.option("--data", hidden=True, expose_value=False, is_eager=True, callback=refuse)
