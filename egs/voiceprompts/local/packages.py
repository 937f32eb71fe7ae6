"""The Debian packages of egs/voiceprompts and where their recordings lie once unpacked.

Shared by local/decode.py (stage 0) and local/data_prep.py (stage 1). Only these packages are used;
others that carry speech or noise are reserved for an independent evaluation of the project.

Speaker ids (folders of <corpus>/speech/):
  ast-<voice>   asterisk-core-sounds-<l>-g722: the voice folder usr/share/asterisk/sounds/<voice>
                (fr_CA_f_June, it_IT_m_Carlo, ru_RU_f_IvrvoiceRU): one speaker per package
  klt-<lang>    klettres-data: usr/share/klettres/<lang>/{alpha,syllab}/*.ogg, one folder per language;
                the package names no speakers, so each language folder counts as one speaker
The language of a speaker is the part of its locale before '_' (fr_CA -> fr, pt_BR -> pt, en_GB -> en),
so that splits by language keep en and en_GB (possibly one voice) on the same side.
Noise recordings (<corpus>/noise/<package>/): col-music-<name> (usr/share/games/colobot/music/*.ogg)
and col-sound-<name> (usr/share/games/colobot/sounds/*.wav, short effects).
"""
from __future__ import annotations

import re
from pathlib import Path

SPEECH_PACKAGES = ("asterisk-core-sounds-fr-g722", "asterisk-core-sounds-it-g722",
                   "asterisk-core-sounds-ru-g722", "klettres-data")
NOISE_PACKAGES = ("colobot-common-sounds",)
PACKAGES = SPEECH_PACKAGES + NOISE_PACKAGES

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def safe_id(text: str) -> str:
    """A file name part made safe for ids (csmvanet.base.keys rule): unusual characters become '_'."""
    out = _UNSAFE.sub("_", text).lstrip(".")
    return out or "_"


def sources(package: str, root: Path) -> list[tuple[str, str, Path]]:
    """(kind, id, source file) of every recording of an unpacked package, sorted.

    kind 'speech': id is '<spk>/<prompt>'; kind 'noise': id is the recording id.
    """
    root = Path(root)
    out: list[tuple[str, str, Path]] = []
    if package.startswith("asterisk-core-sounds-"):
        base = root / "usr/share/asterisk/sounds"
        for voice in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
            spk = "ast-" + safe_id(voice.name)
            for f in sorted(voice.rglob("*.g722")):
                rel = f.relative_to(voice).with_suffix("")
                if rel.parts[0] == "silence":      # recorded silences, not speech
                    continue
                out.append(("speech", f"{spk}/{safe_id('-'.join(rel.parts))}", f))
    elif package == "klettres-data":
        base = root / "usr/share/klettres"
        for lang in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
            spk = "klt-" + safe_id(lang.name)
            for f in sorted(lang.glob("*/*.ogg")):
                out.append(("speech", f"{spk}/{safe_id(f.parent.name + '-' + f.stem)}", f))
    elif package == "colobot-common-sounds":
        base = root / "usr/share/games/colobot"
        for f in sorted((base / "music").glob("*.ogg")):
            out.append(("noise", "col-music-" + safe_id(f.stem), f))
        for f in sorted((base / "sounds").glob("*.wav")):
            out.append(("noise", "col-sound-" + safe_id(f.stem), f))
    else:
        raise ValueError(f"{package}: not one of the recipe's packages ({', '.join(PACKAGES)})")
    return out


def language(spk: str) -> str:
    """'ast-fr_CA_f_June' -> 'fr', 'klt-pt_BR' -> 'pt', 'klt-nds' -> 'nds'."""
    return spk.split("-", 1)[-1].split("_", 1)[0]


def noise_group(rec: str) -> str:
    """'col-music-Proton' -> 'music', 'col-sound-sound001' -> 'effects'."""
    return "music" if rec.startswith("col-music-") else "effects"
