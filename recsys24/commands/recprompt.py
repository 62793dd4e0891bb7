"""``recsys24 recprompt`` (the RecPrompt loop), ``synth-mind`` and ``mind-convert``."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from recsys24.commands import options

console = Console(stderr=True)


@click.command("recprompt")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config (configs/recprompt.yaml).")
@options.raw_data(required=False, help="The raw EB-NeRD folder (articles.parquet, SPLIT/...).")
@click.option("--mind", type=click.Path(file_okay=False), help="MIND split folder (news.tsv, behaviors.tsv).")
@options.split(required=False, help="EB-NeRD split to sample impressions from (default: config).")
@click.option("--backend", type=click.Choice(["openai", "local"]), help="Backend of both LLMs.")
@click.option("--model", help="Model of both LLMs: a server's model name, or a folder for --backend local.")
@click.option("--base-url", help="OpenAI-compatible API root of both LLMs, e.g. http://127.0.0.1:8000/v1.")
@click.option("--iterations", type=int, help="Optimiser iterations (default: config).")
@click.option("--cache", type=click.Path(file_okay=False), help="LLM answer cache folder (default: config).")
@click.option("--no-cache", is_flag=True, help="Send every request, cache nothing.")
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Run folder; rerun to resume.")
def recprompt(config_path, data_dir, mind, split, backend, model, base_url, iterations, cache, no_cache, output):
    """Optimise a RecPrompt template with an LLM and evaluate it (AUC, MRR, nDCG)."""
    from recsys24.data.mind import mind_tables
    from recsys24.data.tables import ebnerd_tables
    from recsys24.recprompt.config import resolve_recprompt_config
    from recsys24.recprompt.optimizer import run_recprompt

    config = resolve_recprompt_config(config_path, data=data_dir, mind=mind, split=split, backend=backend, model=model,
                                      base_url=base_url, iterations=iterations, cache=cache, no_cache=no_cache)
    tables = (
        ebnerd_tables(config.data.path, config.data.split)
        if config.data.source == "ebnerd"
        else mind_tables(config.data.path)
    )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    rec = config.recommender.build(config.cache_path)
    opt = rec if config.optimizer == config.recommender else config.optimizer.build(config.cache_path)
    results = run_recprompt(config, output, tables, rec, opt, log=console.print)

    table = Table(title=f"RecPrompt test ({config.data.num_test} impressions); best = iteration {results['best_iteration']}")
    names = ("auc", "mrr", "ndcg@5", "ndcg@10", "parsed")
    table.add_column("template")
    for n in names:
        table.add_column(n, justify="right")
    for template, m in results["test"].items():
        table.add_row(template, *(f"{m[n]:.4f}" for n in names))
    Console().print(table)
    console.print(f"run folder: {Path(output)}")


@click.command("synth-mind")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--news", "num_news", default=400, show_default=True)
@click.option("--users", "num_users", default=200, show_default=True)
@click.option("--impressions", "num_impressions", default=600, show_default=True)
@options.seed()
def synth_mind(out, num_news, num_users, num_impressions, seed):
    """Write a small synthetic MIND split (news.tsv, behaviors.tsv) with English titles."""
    from recsys24.data.mind import write_synthetic_mind

    path = write_synthetic_mind(out, num_news, num_users, num_impressions, seed)
    console.print(f"wrote {path}/news.tsv and {path}/behaviors.tsv")


@click.command("mind-convert")
@click.option("--mind", "mind_dir", required=True, type=click.Path(file_okay=False), help="MIND split folder.")
@options.split(help="EB-NeRD split name to write (MIND dev -> validation).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="EB-NeRD-layout folder.")
def mind_convert(mind_dir, split, out):
    """Write a MIND split in the EB-NeRD layout, so `recsys24 prepare` and the rest apply."""
    from recsys24.data.mind import write_ebnerd_layout

    path = write_ebnerd_layout(mind_dir, out, split)
    console.print(f"wrote {path}/articles.parquet and {path}/{split}/{{behaviors,history}}.parquet")


COMMANDS = [recprompt, synth_mind, mind_convert]
