"""The README fits on a screen and the documentation's links lead somewhere (issue 28, item 4).

- README.md: at most 160 lines, none over 200 characters, and it opens with the two commands
  (the main job, the test suite) that .ci/run runs exactly.
- Every relative link of README.md, docs/*.md and the recipes' READMEs names a file or folder that
  exists, and a `#fragment` into a Markdown file names one of its headings (GitHub's anchors).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAIN_JOB = "bash tools/install.sh && (cd egs/mini && ./run.sh)"
TEST_SUITE = "bash tools/install.sh && tools/venv/bin/python -m pytest -q test"

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def doc_files() -> list[Path]:
    return sorted([README, *(ROOT / "docs").glob("*.md"), *(ROOT / "egs").glob("*/README.md"),
                   *(ROOT / "egs").glob("*/RESULTS_LOG.md")])


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (links there are examples, not links)."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def anchors(md: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file: lower case, punctuation dropped, spaces to '-',
    repeated headings numbered -1, -2, ..."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(md.read_text(encoding="utf-8")):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(md: Path, root: Path = ROOT) -> list[str]:
    """'file: (target): what is wrong' for every relative link of md that leads nowhere."""
    bad = []
    for line in prose_lines(md.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):      # https:, mailto:, ...
                continue
            path, _, fragment = target.partition("#")
            dest = (md.parent / path).resolve() if path else md
            where = f"{os.path.relpath(md, root)}: ({target})"
            if not dest.exists():
                bad.append(f"{where}: no such file {os.path.relpath(dest, root)}")
            elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                bad.append(f"{where}: no heading #{fragment} in {os.path.relpath(dest, root)}")
    return bad


def test_readme_fits_on_a_screen():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; the rest belongs in docs/"
    long = [f"line {i}: {len(line)} characters" for i, line in enumerate(lines, 1) if len(line) > 200]
    assert not long, f"README.md lines over 200 characters: {long}"


def test_readme_opens_with_the_two_commands_ci_runs():
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```")[1].strip().splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == [MAIN_JOB, TEST_SUITE]
    assert text.index("```") < text.index("\n## "), "the commands come before the first section"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1].strip() == TEST_SUITE


def test_every_relative_link_resolves():
    files = doc_files()
    assert README in files and len(files) > 10
    bad = [b for md in files for b in broken_links(md)]
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_the_link_check_catches_a_missing_file_and_heading(tmp_path):
    """The checker itself: a link to a missing file or heading is reported, a good one is not."""
    (tmp_path / "other.md").write_text("# Other page\n\n## ESPnet's scoring `layout`\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#espnets-scoring-layout) [top](#a-page)\n# A page\n"
                    "[gone](docs/nothing.md) [no heading](other.md#nowhere)\n"
                    "```\n[example](not/checked.md)\n```\n[web](https://example.org/x.md)\n")
    bad = broken_links(page, root=tmp_path)
    assert len(bad) == 2, bad
    assert "no such file" in bad[0] and "docs/nothing.md" in bad[0]
    assert "no heading #nowhere" in bad[1]


@pytest.mark.parametrize("heading, anchor", [("The main job (egs/mini)", "the-main-job-egsmini"),
                                             ("bench_enhance.py", "bench_enhancepy"),
                                             ("Tools the stages use (`utils/`)", "tools-the-stages-use-utils")])
def test_anchors_follow_github(tmp_path, heading, anchor):
    md = tmp_path / "x.md"
    md.write_text(f"# Title\n\n## {heading}\n\n## {heading}\n")
    assert {anchor, f"{anchor}-1"} <= anchors(md)
