"""The README stays a front page and every link in the docs leads somewhere.

The README is what a user reads first: the two commands on top, at most 250
lines, one results table with one row per model; the rest lives in docs/. A link
to a moved section is the first thing that breaks when text moves, so every
relative link (and its #anchor) of README.md and docs/*.md must resolve.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces to '-'."""
    seen: dict[str, int] = {}
    found = set()
    for line in re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M).splitlines():
        if heading := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return found


def test_readme_is_a_front_page_that_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/ (at most 250)"
    top = "\n".join(lines[:8])
    for command in ("bash scripts/demo.sh", "bash scripts/test.sh"):
        assert command in top, f"README.md: {command!r} is not in its first lines"


def test_readme_results_table_has_one_row_per_model():
    section = README.read_text().split("\n## Results on the demo data\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    assert rows, "README.md: no results table under 'Results on the demo data'"
    names = [row.split("|")[1].strip() for row in rows]
    twice = sorted({name for name in names if names.count(name) > 1})
    assert not twice, f"README.md results table: more than one row for {twice}"
    head = section.splitlines()[[i for i, line in enumerate(section.splitlines()) if line.startswith("|")][0]]
    for row in rows:
        assert row.count("|") == head.count("|"), f"README.md results table: {row!r} has another column count"


def test_every_relative_link_of_the_docs_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(prose(page.read_text())):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            where = f"{page.relative_to(ROOT)}: {target}"
            if not path.is_file():
                broken.append(f"{where} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{where} (no such heading in {path.relative_to(ROOT)})")
    assert not broken, "broken links:\n" + "\n".join(broken)
