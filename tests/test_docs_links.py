"""Every relative link in README.md, docs/ and benchmarks/README.md reaches its target.

A link names an existing file, and its `#anchor`, if any, is the GitHub anchor of a
heading in that file, so moving a section between documents cannot leave a dead link.
"""

from __future__ import annotations

import re
from pathlib import Path

from paymig.config_docs.reference import anchor

REPO = Path(__file__).resolve().parents[1]
#: A Markdown link `[text](target)`; external and mail links are skipped.
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", flags=re.MULTILINE)


def _documents() -> list[Path]:
    """The Markdown files people read in the repository."""
    return [REPO / "README.md", REPO / "benchmarks" / "README.md", *sorted(REPO.glob("docs/*.md"))]


def _anchors(path: Path) -> set[str]:
    """The anchors of the headings of a Markdown file, outside code blocks."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {anchor(heading.strip()) for heading in _HEADING.findall(text)}


def _broken_links(path: Path) -> list[str]:
    """The relative links of `path` whose file or anchor does not exist."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        name, _, fragment = target.partition("#")
        linked = (path.parent / name).resolve() if name else path
        if not linked.exists() or (fragment and fragment not in _anchors(linked)):
            broken.append(target)
    return broken


def test_every_relative_link_resolves() -> None:
    checked = 0
    for path in _documents():
        assert _broken_links(path) == [], path.relative_to(REPO)
        checked += len(_LINK.findall(path.read_text(encoding="utf-8")))
    assert checked >= 30


def test_a_dead_file_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## The `x.y` part\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#the-xy-part) [self](#top) [gone](missing.md) [bad](other.md#nope)\n"
        "[web](https://example.com/a)\n\n# Top\n",
        encoding="utf-8",
    )
    assert _broken_links(page) == ["missing.md", "other.md#nope"]
