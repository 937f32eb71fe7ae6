"""Open a listening report in headless Chromium and list what is wrong with it (test helper).

:func:`browser` finds Chromium, or installs it with tools/setup_chromium.sh (apt-get, as root);
it returns None and a reason when that is not possible. :func:`check_page` opens a page twice:
``--dump-dom`` of ``page.html#selfcheck`` (the page's inline self-check writes one line per
``<audio>``/``<img>``: decoded/loaded or not, and any error event) with ``--enable-logging=stderr``
(every console message of the page is a problem: the reports log nothing), then ``--screenshot``.
Besides the browser it checks that every audio file decodes with soundfile, and accessibility
basics: an ``h1``, ``h2`` sections, ``aria-label`` on every player, ``alt`` on every figure.
``python test/browser_check.py PAGE [PNG]`` prints the findings (and keeps the screenshot).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--mute-audio",
         "--no-first-run", "--disable-extensions"]


def browser() -> tuple[str | None, str]:
    """(path of a Chromium, '') or (None, why not)."""
    for b in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(b):
            return shutil.which(b), ""
    r = subprocess.run([str(REPO / "tools" / "setup_chromium.sh")], capture_output=True, text=True, timeout=1200)
    if r.returncode == 0:
        return r.stdout.strip().splitlines()[-1], ""
    last = (r.stderr.strip().splitlines() or ["setup_chromium.sh failed"])[-1]
    return None, f"Chromium cannot be installed here: {last}"


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def elements(html_text: str) -> list[tuple[str, dict]]:
    p = _Elements()
    p.feed(html_text)
    return p.tags


def _run(chrome: str, args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([chrome, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=180, env=dict(os.environ, LC_ALL="C"))


def check_page(chrome: str, page: Path, screenshot: Path | None = None) -> tuple[list[str], str]:
    """-> (problems, the self-check text). Empty problems: the page is fine."""
    import numpy as np
    import soundfile as sf

    page = Path(page).resolve()
    problems: list[str] = []
    tags = elements(page.read_text())
    audios = [a for t, a in tags if t == "audio"]
    imgs = [a for t, a in tags if t == "img"]
    heads = [t for t, _ in tags if re.fullmatch(r"h[1-6]", t)]
    if "h1" not in heads or "h2" not in heads:
        problems.append(f"{page.name}: headings {heads}: want an h1 and h2 sections")
    for a in audios:
        if not a.get("aria-label", "").strip():
            problems.append(f"{page.name}: <audio src={a.get('src')}> has no aria-label")
        f = page.parent / a.get("src", "")
        try:
            data, sr = sf.read(str(f))
            if len(data) == 0 or not np.all(np.isfinite(data)):
                problems.append(f"{page.name}: {a.get('src')}: empty or not finite")
        except Exception as e:  # noqa: BLE001
            problems.append(f"{page.name}: {a.get('src')}: does not decode ({e})")
    for a in imgs:
        if not a.get("alt", "").strip():
            problems.append(f"{page.name}: <img src={a.get('src')}> has no alt text")
    for a in (a for t, a in tags if t in ("script", "link", "img", "audio", "source")):
        src = a.get("src") or a.get("href") or ""
        if re.match(r"[a-z]+:", src) or src.startswith("/"):
            problems.append(f"{page.name}: {src}: not a relative path (the folder must be self-contained)")
    profile = Path(tempfile.mkdtemp(prefix="csmvanet-chromium-"))
    try:
        r = _run(chrome, ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000", "--dump-dom",
                          page.as_uri() + "#selfcheck"], profile)
        console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]
        problems += [f"{page.name}: console: {ln.split('] ', 1)[-1]}" for ln in console]
        m = re.search(r'<pre id="selfcheck"[^>]*>(.*?)</pre>', r.stdout, re.S)
        check = (m.group(1) if m else "").strip()
        lines = check.splitlines()
        if not lines or not lines[-1].startswith("DONE"):
            problems.append(f"{page.name}: the self-check did not finish (rc {r.returncode}): {check[-300:]!r}")
        else:
            if lines[-1] != f"DONE {len(audios) + len(imgs)}":
                problems.append(f"{page.name}: self-check saw {lines[-1]}, the page has {len(audios)} audio and "
                                f"{len(imgs)} img elements")
            for ln in lines[:-1]:
                parts = ln.split()
                if parts[0] == "ERROR" or (len(parts) > 2 and parts[2] != "ok"):
                    problems.append(f"{page.name}: browser: {ln}")
                elif parts[0] == "AUDIO" and not float(parts[3]) > 0:
                    problems.append(f"{page.name}: browser: {ln}: no duration")
        shot = screenshot or profile / "shot.png"
        r = _run(chrome, ["--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()], profile)
        if not Path(shot).is_file():
            problems.append(f"{page.name}: no screenshot (rc {r.returncode})")
        else:
            import matplotlib.image as mpimg

            px = mpimg.imread(str(shot))[..., :3]
            inked = float(np.mean(np.any(px < 0.9, axis=-1)))
            if px.std() < 0.02 or inked < 0.005:
                problems.append(f"{page.name}: screenshot looks blank (std {px.std():.3f}, {inked:.1%} inked)")
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return problems, check


if __name__ == "__main__":
    chrome, why = browser()
    if chrome is None:
        sys.exit(why)
    found, text = check_page(chrome, Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    print(text)
    print("\n".join(found) or "no problems")
    sys.exit(1 if found else 0)
