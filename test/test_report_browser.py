"""The listening reports in a real browser: headless Chromium opens each kind of page.

Checked (test/browser_check.py): no console messages, every <audio> decodes in the browser (and
with soundfile), every <img> loads (naturalWidth > 0), the screenshot is not blank, only relative
paths, headings, aria-label on players, alt text on figures. Chromium is the Debian package
`chromium`: when it is missing and the test runs as root, tools/setup_chromium.sh installs it with
apt-get (as CI does on a fresh machine); skipped, with the reason, only where it cannot be installed
(not root, no apt-get, the install failed). Run with -s to see what the browser reported.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from browser_check import browser, check_page


@pytest.fixture(scope="module")
def chrome():
    path, why = browser()
    if path is None:
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def scored_report(tmp_path_factory):
    from test_score_cli import _args, make_data

    from csmvanet.bin.score import main

    root = make_data(tmp_path_factory.mktemp("scored"), n=6, seconds=1.0)
    d = root / "data"
    assert main(_args(root, root / "out", "--utt2noise", str(d / "utt2noise"), "--utt2snr", str(d / "utt2snr"),
                      "--html_report", "true")) == 0
    return root / "out"


@pytest.fixture(scope="module")
def enhance_report(tmp_path_factory):
    from test_enhance import make_exp, tiny_cfg
    from test_listening_report import enhance_inputs

    from csmvanet.bin.enhance import main

    top = tmp_path_factory.mktemp("enh")
    model = make_exp(top / "tiny", tiny_cfg())
    inp = enhance_inputs(top / "in")
    assert main([str(inp), "--model", str(model), "--output_dir", str(top / "out"), "--report", str(top / "rep"),
                 "--no_progress", "--num_threads", "1"]) == 0
    return top / "rep"


def _report(page: Path, problems: list[str], check: str) -> None:
    n = sum(ln.startswith(("AUDIO ", "IMG ")) for ln in check.splitlines())
    print(f"\n== {page.name}: {n} audio/img elements checked in the browser")
    print(check)
    print("\n".join(problems) or "no problems")


def test_scored_set_report_in_chromium(chrome, scored_report, tmp_path):
    page = scored_report / "report.html"
    problems, check = check_page(chrome, page, tmp_path / "shot.png")
    _report(page, problems, check)
    assert problems == []
    assert check.count("AUDIO ") >= 4 * 3 and check.count(" ok ") == len(check.splitlines()) - 1


def test_enhance_report_in_chromium(chrome, enhance_report, tmp_path):
    pages = sorted(enhance_report.glob("*.html"))
    assert [p.name for p in pages] == ["0000_one.html", "0001_two.html", "index.html"]
    for page in pages:
        problems, check = check_page(chrome, page, tmp_path / f"{page.stem}.png")
        _report(page, problems, check)
        assert problems == []
        if page.name != "index.html":
            assert check.count("AUDIO ") == 3 and check.count("IMG ") == 1


def test_the_browser_check_finds_what_is_broken(chrome, scored_report, tmp_path):
    """A copy of a good report with a clip gone, a figure corrupted, a script error and a player
    without a label: every one is found."""
    bad = tmp_path / "bad"
    shutil.copytree(scored_report, bad)
    clip = sorted(bad.glob("listen/*/enhanced.flac"))[0]
    clip.unlink()
    fig = sorted(bad.glob("listen/*/spectrogram.jpg"))[-1]
    fig.write_bytes(b"not a picture")
    page = bad / "report.html"
    text = page.read_text()
    text = text.replace("</main>", "</main><script>noSuchFunction();</script>", 1)
    text = text.replace(' aria-label="clean (reference)', ' data-x="', 1)
    page.write_text(text)
    problems, check = check_page(chrome, page)
    _report(page, problems, check)
    rel_clip = clip.relative_to(bad).as_posix()
    rel_fig = fig.relative_to(bad).as_posix()
    assert any("console" in p and "noSuchFunction" in p for p in problems)
    assert any(f"AUDIO {rel_clip} bad" in p for p in problems)
    assert any(f"IMG {rel_fig} bad" in p for p in problems)
    assert any(rel_clip in p and "does not decode" in p for p in problems)
    assert any("has no aria-label" in p for p in problems)
