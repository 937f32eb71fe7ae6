"""The checks of Kaldi's utils/validate_data_dir.sh (egs/wsj/s5, run with --no-feats --no-text), written
from its behaviour for the tests: :func:`kaldi_problems` lists what Kaldi would reject (first problem of
each kind), so a test can say "Kaldi accepts every dir we write" and "we reject what Kaldi rejects"
without Kaldi installed. Rules encoded:

- utt2spk and spk2utt exist and are not empty; every utt2spk line has 2 fields;
- every file it reads ends with a newline and is sorted (C locale) on its first field, keys unique;
- utt2spk is sorted by speaker as well (`sort -k2 -C`) unless no_spk_sort;
- spk2utt gives back utt2spk exactly (spk2utt_to_utt2spk.pl, compared byte for byte);
- wav.scp required unless no_wav; no value starting with '~';
- with segments: 4 fields and end > start (so end -1 fails); the sorted unique recordings of segments
  equal wav.scp's keys, and reco2file_and_channel's if present;
  without segments: wav.scp's keys (and reco2file_and_channel's) equal the utterances;
- reco2file_and_channel: 3 fields, channel A or B (1 is only a warning);
- cmvn.scp, spk2gender (values m/f), spk2warp (0.5 < w < 1.5): the speakers of spk2utt exactly;
- utt2warp (0.5 < w < 1.5), vad.scp, utt2lang, utt2uniq, utt2dur (> 0), utt2num_frames (positive integer):
  the utterances of utt2spk exactly; reco2dur (> 0): the recordings (or utterances) exactly.
"""
from __future__ import annotations

from pathlib import Path


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1] if path.read_bytes().endswith(b"\n") else \
        path.read_bytes().split(b"\n")


def _first(path: Path) -> list[bytes]:
    return [ln.split()[0] if ln.split() else b"" for ln in _lines(path)]


def kaldi_problems(d: Path, *, no_spk_sort: bool = False, no_wav: bool = False) -> list[str]:
    d = Path(d)
    out: list[str] = []
    for f in ("spk2utt", "utt2spk"):
        if not (d / f).is_file() or (d / f).stat().st_size == 0:
            return [f"no such file or empty: {f}"]
    if any(len(ln.split()) != 2 for ln in _lines(d / "utt2spk")):
        out.append("utt2spk has wrong format")

    def sorted_uniq(name: str) -> bool:
        data = (d / name).read_bytes()
        if data and not data.endswith(b"\n"):
            out.append(f"{name}: invalid newline")
            return False
        keys = _first(d / name)
        if keys != sorted(set(keys)):
            out.append(f"{name} is not sorted or has duplicates")
            return False
        return True

    sorted_uniq("utt2spk")
    u2s = [ln.split() for ln in _lines(d / "utt2spk")]
    if not no_spk_sort:
        by_spk = [(b" " + b" ".join(p[1:]), b" ".join(p)) for p in u2s]
        if by_spk != sorted(by_spk):
            out.append("utt2spk is not sorted by speaker")
    sorted_uniq("spk2utt")
    back = sorted((u, ln.split()[0]) for ln in _lines(d / "spk2utt") for u in ln.split()[1:])
    if [(p[0], p[1] if len(p) > 1 else b"") for p in u2s] != back:
        out.append("spk2utt and utt2spk do not match")
    utts = [p[0] for p in u2s]
    speakers = _first(d / "spk2utt")

    recordings = None
    if (d / "segments").is_file() and not (d / "wav.scp").is_file():
        out.append("segments without wav.scp")
    if not (d / "wav.scp").is_file() and not no_wav:
        out.append("no wav.scp")
    if (d / "wav.scp").is_file():
        sorted_uniq("wav.scp")
        if any(len(ln.split()) > 1 and ln.split()[1].startswith(b"~") for ln in _lines(d / "wav.scp")):
            out.append("tilde in wav.scp")
        if (d / "segments").is_file():
            sorted_uniq("segments")
            for ln in _lines(d / "segments"):
                p = ln.split()
                try:
                    bad = len(p) != 4 or float(p[3]) <= float(p[2])
                except ValueError:
                    bad = True
                if bad:
                    out.append(f"bad segments line {ln!r}")
                    break
            recordings = sorted({ln.split()[1] for ln in _lines(d / "segments") if len(ln.split()) > 1})
            if recordings != _first(d / "wav.scp"):
                out.append("recording-ids of segments and wav.scp differ")
            want = recordings
        else:
            if _first(d / "wav.scp") != utts:
                out.append("utterances of utt2spk and wav.scp differ")
            want = utts
        if (d / "reco2file_and_channel").is_file():
            sorted_uniq("reco2file_and_channel")
            for ln in _lines(d / "reco2file_and_channel"):
                p = ln.split()
                if len(p) != 3 or p[2] not in (b"A", b"B", b"1"):
                    out.append(f"bad reco2file_and_channel line {ln!r}")
                    break
            if _first(d / "reco2file_and_channel") != want:
                out.append("ids of reco2file_and_channel differ")

    def number(v: bytes, low=0.0, high=None, integer=False) -> bool:
        try:
            x = float(v)
        except ValueError:
            return False
        return x > low and (high is None or x < high) and (not integer or x == int(x))

    for name, keys, check in (("cmvn.scp", speakers, None),
                              ("spk2gender", speakers, lambda v: v in (b"m", b"f")),
                              ("spk2warp", speakers, lambda v: number(v, 0.5, 1.5)),
                              ("utt2warp", utts, lambda v: number(v, 0.5, 1.5)),
                              ("vad.scp", utts, None), ("utt2lang", utts, None), ("utt2uniq", utts, None),
                              ("utt2dur", utts, number),
                              ("utt2num_frames", utts, lambda v: number(v, integer=True)),
                              ("reco2dur", recordings if recordings is not None else utts, number)):
        if not (d / name).is_file():
            continue
        sorted_uniq(name)
        if _first(d / name) != keys:
            out.append(f"ids of {name} differ")
        if check and any(len(ln.split()) != 2 or not check(ln.split()[1]) for ln in _lines(d / name)):
            out.append(f"bad value in {name}")
    return out
