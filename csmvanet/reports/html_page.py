"""Offline HTML pages for the listening reports: one template, audio players, figures, tables.

Standard library only (:class:`string.Template`, :func:`html.escape`). Pages carry their style
inline and load nothing from the network; audio and figures are files next to the page, referenced
by relative paths, so a report folder can be copied or zipped and opened anywhere.

Every page has a small inline self-check (run only when the page is opened with ``#selfcheck``
after its name; a reader never runs it): it waits until every ``<audio>`` has decoded its first
data (or failed) and every ``<img>`` has loaded, then writes one line per element, and any page
error, into ``<pre id="selfcheck">``. The browser test reads that back with
``chromium --headless --dump-dom``.
"""
from __future__ import annotations

import html
import math
import re
from string import Template

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;max-width:1300px;
 padding:0 1em;color:#1b1b1b;background:#fff;line-height:1.4}
h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1.05em;margin-bottom:.3em}
.tablewrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:.2em .5em;text-align:right}th{background:#f0f0f0}
td:first-child,th:first-child,td.l,th.l{text-align:left}
.players{display:flex;flex-wrap:wrap;gap:.6em 1.2em;margin:.4em 0}
.players figure{margin:0}.players figcaption{font-size:.85em;color:#444}
audio{width:250px;height:32px}
img{max-width:100%;height:auto;border:1px solid #ddd}
.utt{border:1px solid #ddd;border-radius:6px;padding:.4em 1em 1em;margin:1em 0}
.note{color:#555;font-size:.9em}.warn{color:#a40000}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;font-size:.9em}
dl.kv dt{font-weight:600}dl.kv dd{margin:0}
nav a{margin-right:1em}
#selfcheck{display:none}
"""

SELFCHECK_JS = r"""
(function(){
 if(location.hash!=="#selfcheck")return;
 var out=[],errs=[];
 window.addEventListener("error",function(e){var t=e.target;
  errs.push("ERROR "+(t&&t.src?t.tagName+" "+t.getAttribute("src"):(e.message||"error")));},true);
 function one(el){return new Promise(function(res){
  if(el.tagName==="IMG"){
   if(el.complete){res("IMG "+el.getAttribute("src")+" "+(el.naturalWidth>0?"ok":"bad")+" "+el.naturalWidth);return;}
   el.addEventListener("load",function(){res("IMG "+el.getAttribute("src")+" ok "+el.naturalWidth);});
   el.addEventListener("error",function(){res("IMG "+el.getAttribute("src")+" bad 0");});return;}
  function done(){res("AUDIO "+el.getAttribute("src")+" ok "+el.duration.toFixed(3));}
  function fail(){res("AUDIO "+el.getAttribute("src")+" bad "+(el.error?el.error.code:"?"));}
  if(el.error){fail();return;}
  if(el.readyState>=2){done();return;}
  el.addEventListener("loadeddata",done);el.addEventListener("error",fail);
  el.preload="auto";el.load();});}
 window.addEventListener("load",function(){
  var els=Array.prototype.slice.call(document.querySelectorAll("audio,img"));
  Promise.all(els.map(one)).then(function(r){out=r.concat(errs);
   var p=document.getElementById("selfcheck");p.textContent=out.join("\n")+"\nDONE "+els.length;});});
})();
"""

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="csmvanet $version">
<title>$title</title>
<style>$css</style>
</head>
<body>
<main>
$body
</main>
<pre id="selfcheck" aria-hidden="true"></pre>
<script>$js</script>
</body>
</html>
""")


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, body: str, version: str = "") -> str:
    """A complete page: ``body`` is HTML (already escaped where needed), ``title`` plain text."""
    return PAGE.substitute(title=esc(title), body=body, css=CSS, js=SELFCHECK_JS, version=esc(version))


def audio_player(src: str, label: str) -> str:
    """A labelled player for the file ``src`` (relative path)."""
    return (f'<figure><figcaption>{esc(label)}</figcaption>'
            f'<audio controls preload="metadata" src="{esc(src)}" aria-label="{esc(label)}"></audio>'
            f'</figure>')


def players(items: list[tuple[str, str]]) -> str:
    """``[(src, label)]`` -> a row of players."""
    return '<div class="players">' + "".join(audio_player(s, lab) for s, lab in items) + "</div>"


def image(src: str, alt: str) -> str:
    return f'<img src="{esc(src)}" alt="{esc(alt)}" loading="eager">'


def kv_list(items: list[tuple[str, object]]) -> str:
    """A definition list of settings: ``[(name, value)]``."""
    return '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"


def table(head: list[str], rows: list[list[object]], caption: str | None = None) -> str:
    """A table; cells are escaped."""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    th = "".join(f'<th scope="col">{esc(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="tablewrap"><table>{cap}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def md_table(md: str, caption: str | None = None) -> str:
    """A Markdown pipe table (header, separator, rows) as an HTML table; ``*x*`` cells lose the stars."""
    lines = [ln.strip() for ln in md.strip().splitlines() if ln.strip().startswith("|")]
    if len(lines) < 2:
        return ""

    def cells(line: str) -> list[str]:
        return [re.sub(r"^\*(.*)\*$", r"\1", c.strip()) for c in line.strip("|").split("|")]

    return table(cells(lines[0]), [cells(ln) for ln in lines[2:]], caption)


def fmt_seconds(s: float) -> str:
    """123.4 -> '2:03.4' (m:ss.s), for times a reader jumps to."""
    if not math.isfinite(s):
        return "-"
    m, sec = divmod(max(s, 0.0), 60.0)
    return f"{int(m)}:{sec:04.1f}"


def safe_name(text: str, index: int) -> str:
    """A file name for an utterance key: ``NNNN_`` + the key with anything but [A-Za-z0-9._-] as '_'."""
    return f"{index:04d}_" + (re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".")[:80] or "utt")


__all__ = ["page", "esc", "audio_player", "players", "image", "kv_list", "table", "md_table", "fmt_seconds",
           "safe_name"]
