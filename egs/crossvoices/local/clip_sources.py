"""The Debian packages of egs/crossvoices and where their recordings lie once unpacked.

Shared by local/decode_clips.py (stage 0) and local/data_prep.py (stage 1). The packages egs/voiceprompts
uses keep its decoding and ids (its local/packages.py, run through its local/download.sh); the new ones
are decoded here:

Speaker ids (folders of <corpus>/speech/), one per separately recorded voice set:
  tux-<lang>   tuxpaint-stamps-default: usr/share/tuxpaint/stamps/**/<stamp>_desc_<lang>.{ogg,wav}, the
               spoken stamp descriptions, one volunteer per language (tux-en: <stamp>_desc.ogg, the
               English ones); the names of letters and signs spoken under symbols/ are left out
  hw-<pack>    hedgewars-data: usr/share/games/hedgewars/Data/Sounds/voices/<pack>/*.ogg, one voice pack
  ktb-<lang>   ktuberling-data: usr/share/ktuberling/sounds/<lang>/*.{ogg,wav}, words spoken in one
               language (an ogg and a wav of the same word: the ogg)
  ast-*, klt-* as in egs/voiceprompts
Noise recordings (<corpus>/noise/<package>/): tux-sfx-<stamp> (the stamps' own sounds, <stamp>.{ogg,wav}
outside symbols/), hw-sound-<name> (Data/Sounds/*.ogg, game effects), hw-music-<name> (Data/Music/*.ogg),
col-music-*, col-sound-* (egs/voiceprompts).

Sources for the split (see conf/roles.tsv): every speaker belongs to a unit, :func:`unit`: the voice
pack family for hedgewars (hw:Default covers Default and Default_es...: they may share actors), the
asterisk voice, and for the volunteer-recorded packages (tuxpaint, ktuberling, klettres) the language
(lang:<l>): a volunteer may have recorded the same language for several of them, so one language of
these packages is never in two roles.
"""
from __future__ import annotations

import re
from pathlib import Path

VOICEPROMPTS = ("asterisk-core-sounds-fr-g722", "asterisk-core-sounds-it-g722", "asterisk-core-sounds-ru-g722",
                "klettres-data", "colobot-common-sounds")
NEW = ("tuxpaint-stamps-default", "hedgewars-data", "ktuberling-data")
PACKAGES = NEW + VOICEPROMPTS

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")
_DESC = re.compile(r"^(?P<stamp>.+)_desc(?:_(?P<lang>[a-z]{2,3}(?:_[A-Z]{2})?))?$")
_AUDIO = (".ogg", ".wav")


def safe_id(text: str) -> str:
    out = _UNSAFE.sub("_", text).lstrip(".")
    return out or "_"


def _audio(files) -> list[Path]:
    return sorted(f for f in files if f.suffix in _AUDIO and f.is_file())


def sources(package: str, root: Path) -> list[tuple[str, str, Path]]:
    """(kind, id, source file) of every recording of an unpacked new package, sorted; kind 'speech':
    id '<spk>/<clip>', kind 'noise': the recording id."""
    root = Path(root)
    out: list[tuple[str, str, Path]] = []
    if package == "tuxpaint-stamps-default":
        base = root / "usr/share/tuxpaint/stamps"
        for f in _audio(base.rglob("*")) if base.is_dir() else []:
            rel = f.relative_to(base)
            stem = f.name.split(".")[0]            # one file is named *_desc_da.ogg.ogg
            m = _DESC.match(stem)
            name = safe_id("-".join(rel.parent.parts + ((m.group("stamp") if m else stem),)))
            if m:
                out.append(("speech", f"tux-{safe_id(m.group('lang') or 'en')}/{name}", f))
            elif rel.parts[0] != "symbols" and not re.search(r"_[a-z]{2,3}(_[A-Z]{2})?$", stem):
                out.append(("noise", f"tux-sfx-{name}", f))  # a stamp's own sound (symbols/: spoken letters)
    elif package == "hedgewars-data":
        base = root / "usr/share/games/hedgewars/Data"
        voices = base / "Sounds/voices"
        for pack in sorted(p for p in voices.iterdir() if p.is_dir()) if voices.is_dir() else []:
            for f in _audio(pack.glob("*")):
                out.append(("speech", f"hw-{safe_id(pack.name)}/{safe_id(f.stem)}", f))
        for f in _audio((base / "Sounds").glob("*")):
            out.append(("noise", f"hw-sound-{safe_id(f.stem)}", f))
        for f in _audio((base / "Music").glob("*")):
            out.append(("noise", f"hw-music-{safe_id(f.stem)}", f))
    elif package == "ktuberling-data":
        base = root / "usr/share/ktuberling/sounds"
        for lang in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
            files = _audio(lang.glob("*"))
            oggs = {f.stem for f in files if f.suffix == ".ogg"}
            for f in files:
                if f.suffix == ".wav" and f.stem in oggs:
                    continue
                out.append(("speech", f"ktb-{safe_id(lang.name)}/{safe_id(f.stem)}", f))
    else:
        raise ValueError(f"{package}: not one of the new packages of egs/crossvoices ({', '.join(NEW)})")
    return sorted(out, key=lambda t: (t[0], t[1]))


def package_of(spk_or_rec: str) -> str:
    """The package of a speaker id or a noise recording id."""
    prefix = spk_or_rec.split("-", 1)[0]
    return {"tux": "tuxpaint-stamps-default", "hw": "hedgewars-data", "ktb": "ktuberling-data",
            "klt": "klettres-data", "col": "colobot-common-sounds"}.get(prefix) or (
        f"asterisk-core-sounds-{language(spk_or_rec)}-g722" if prefix == "ast" else "unknown")


def language(spk: str) -> str:
    """'tux-pt_BR' -> 'pt', 'ast-fr_CA_f_June' -> 'fr', 'ktb-sr@latin' -> 'sr', 'hw-Default_es' -> 'es',
    'hw-British' -> 'en' (the hedgewars packs without a suffix speak English, Russian ones Russian)."""
    prefix, name = spk.split("-", 1)
    if prefix == "hw":
        family, _, suffix = name.partition("_")
        return suffix or ("ru" if family == "Russian" else "en")
    return re.split(r"[_@]", name, maxsplit=1)[0]


def unit(spk: str) -> str:
    """The source unit of a speaker, for the split (see the module doc)."""
    prefix, name = spk.split("-", 1)
    if prefix == "hw":
        return "hw:" + name.split("_", 1)[0]
    if prefix == "ast":
        return "ast:" + name
    return "lang:" + language(spk)


def noise_unit(rec: str) -> str:
    """The source unit of a noise recording: its package and kind ('hw-music-x' -> 'hw-music')."""
    parts = rec.split("-")
    return "-".join(parts[:2])
