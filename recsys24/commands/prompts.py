"""``recsys24 prompts show``: print a few prompts of a prepared split as the model reads them."""

from __future__ import annotations

import click

from recsys24.commands import options
from recsys24.progress import console
from recsys24.prompts.templates import LANGUAGES, TEMPLATES


@click.group()
def prompts() -> None:
    """Prompt templates a–e."""


@prompts.command()
@options.prepared(help="Prepared split folder.")
@click.option("--template", type=click.Choice(list(TEMPLATES)), default="d", show_default=True)
@click.option("--n", type=int, default=3, show_default=True, help="Number of prompts.")
@click.option("--language", type=click.Choice(list(LANGUAGES)), default="da", show_default=True)
@click.option("--history-size", "-T", type=int, default=4, show_default=True)
@click.option("--clip-chars", type=int, default=60, show_default=True)
@click.option("--max-length", type=int, default=None, help="Prompt tokens (default 256 for a–d, 512 for e).")
@click.option("--tokenizer", "tokenizer_dir", default=None, help="mT5 hub id or folder (default: train one on the articles).")
def show(prepared_dir, template, n, language, history_size, clip_chars, max_length, tokenizer_dir):
    """Print N prompts of template a–e built from the prepared split."""
    from recsys24.model_inputs.preview import preview_prompts
    from recsys24.prompts.templates import PromptConfig

    prompt = PromptConfig(
        template=template,
        language=language,
        history_size=history_size,
        clip_chars=clip_chars,
        max_length=max_length or (512 if template == "e" else 256),
    )
    for p in preview_prompts(prepared_dir, prompt, n=n, tokenizer_dir=tokenizer_dir):
        labels = "" if p.labels is None else f", clicked {p.labels}"
        console.print(
            f"[bold]impression {p.impression_id}[/] candidates {p.candidates}{labels}, {p.num_tokens} tokens",
            highlight=False,
        )
        console.print(p.text, markup=False, highlight=False, soft_wrap=True)
        console.print()


COMMANDS = [prompts]
