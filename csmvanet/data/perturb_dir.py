"""Speed perturbation and resampling of data dirs through `cmd |` entries, with the interfaces of
Kaldi's utils/data/perturb_data_dir_speed.sh and utils/data/resample_data_dir.sh.

The audio is not rewritten: each audio list entry becomes a pipe through ``csmvanet.bin.audio_pipe``
(``--speed F`` or ``--rate R``), as Kaldi's scripts pipe through sox. Unlike Kaldi's (which rewrite
wav.scp only), every audio list (wav.scp, spkN.scp, noiseN.scp) is changed alike, so clean and noisy
stay aligned.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from csmvanet.data.datadir import DataDirError, is_audio_list
from csmvanet.data.dir_ops import Tables, _c_sorted, _check_not_same, load_tables, write_tables
from csmvanet.data.durations import compute_utt2dur

KEPT_AS_IS = ("text", "utt2lang", "utt2snr", "utt2noise", "utt2category")  # values unchanged by speed


def pipe(value: str, tool: str, option: str) -> str:
    """The scp value ``value`` read through ``tool option`` (a pipe itself, an ark entry or a file)."""
    v = value.strip()
    if v.endswith("|"):
        return f"{v[:-1].rstrip()} | {tool} {option} - |"
    return f"{tool} {option} {shlex.quote(v)} |"


def _seconds(value: str, factor: float) -> str:
    return f"{float(value) / factor:.6g}"


def perturb_speed(src: str | Path, dest: str | Path, factor: str, tool: str, *,
                  include_spk_prefix: bool = True) -> tuple[int, list[str]]:
    """Write ``dest``: ``src`` played ``factor`` times faster. Ids as Kaldi's: ``sp<F>-<id>`` for
    utterances, speakers and recordings (``<id>-sp<F>`` for utterances and recordings without the
    speaker prefix); utt2uniq maps them to the originals; segments and utt2dur / reco2dur divided by F
    (segments of 10 ms or less dropped); utt2num_samples round(n / F) without segments; text, utt2lang,
    utt2snr, utt2noise, utt2category, spk2gender and reco2file_and_channel follow their keys. Files
    that speed changes otherwise (vad_labels.scp, utt2num_frames, cmvn.scp, ...) are left out and named
    in the returned notices. Returns (utterances, notices)."""
    try:
        f = float(factor)
        if not f > 0:
            raise ValueError
    except ValueError:
        raise DataDirError(f"the warping factor must be a positive number, not '{factor}'") from None
    _check_not_same(src, dest)
    t = load_tables(src)
    if "utt2spk" not in t.utt:
        raise DataDirError(f"{Path(src) / 'utt2spk'}: no such file")
    label = f"sp{factor}"
    pre, post = (f"{label}-", "") if include_spk_prefix else ("", f"-{label}")
    umap = {u: f"{pre}{u}{post}" for u in t.utterances()}
    spk = (lambda s: f"{label}-{s}") if include_spk_prefix else (lambda s: s)  # noqa: E731
    reco = lambda r: f"{pre}{r}{post}"  # noqa: E731
    option = f"--speed {factor}"
    out = Tables(Path(dest), copied=dict(t.copied))
    notices = []
    if "utt2dur" not in t.utt:
        t.utt["utt2dur"] = compute_utt2dur(src)[0]
    for name, table in t.utt.items():
        new = {umap[k]: v for k, v in table.items() if k in umap}
        if name == "utt2spk":
            new = {k: spk(v) for k, v in new.items()}
        elif name == "segments":
            new = {}
            for u, v in table.items():
                r, s, e = v.split()
                if float(e) / f > float(s) / f + 0.01:
                    new[umap[u]] = f"{reco(r)} {float(s) / f:.2f} {float(e) / f:.2f}"
        elif name == "utt2dur":
            new = {k: _seconds(v, f) for k, v in new.items()}
        elif name == "utt2num_samples" and not t.has_segments:
            new = {k: str(int(round(int(v) / f))) for k, v in new.items()}
        elif name == "utt2uniq":
            continue
        elif is_audio_list(name):
            new = {k: pipe(v, tool, option) for k, v in new.items()}
        elif name == "reco2dur":
            new = {k: _seconds(v, f) for k, v in new.items()}
        elif name not in KEPT_AS_IS and name != "reco2file_and_channel":
            notices.append(f"{name}: left out (speed perturbation changes it)")
            continue
        out.utt[name] = new
    orig = t.utt.get("utt2uniq", {})
    out.utt["utt2uniq"] = {new: orig.get(old, old) for old, new in umap.items()}
    for name, table in t.reco.items():
        if is_audio_list(name):
            out.reco[name] = {reco(k): pipe(v, tool, option) for k, v in table.items()}
        elif name in ("reco2dur", "reco2file_and_channel"):
            out.reco[name] = {reco(k): (_seconds(v, f) if name == "reco2dur" else v) for k, v in table.items()}
    for name, table in t.spk.items():
        if name == "spk2gender":
            out.spk[name] = {spk(k): v for k, v in table.items()}
        else:
            notices.append(f"{name}: left out (speed perturbation changes it)")
    if "segments" in out.utt:  # segments too short after the change went: keep the rest consistent
        keep = set(out.utt["segments"])
        out = out.select(_c_sorted(keep))
    write_tables(out, dest)
    return out.num_utts(), notices


def resample_in_place(data_dir: str | Path, rate: int, tool: str) -> list[str]:
    """Kaldi's resample_data_dir.sh: every audio list entry of ``data_dir`` read through a resampling
    pipe to ``rate`` Hz; utt2dur written first when missing (durations do not change). Files that hold
    sample or frame counts (utt2num_samples, vad_labels.scp, feats.scp, cmvn.scp) would be wrong
    afterwards: they move to ``.backup/``. Returns the notices."""
    from csmvanet.data.datadir import write_scp
    from csmvanet.base.atomic_files import atomic_write_text

    d = Path(data_dir)
    if rate <= 0:
        raise DataDirError(f"the sample rate must be a positive integer, not {rate}")
    notices = []
    if not (d / "utt2dur").is_file() or not (d / "utt2dur").stat().st_size:
        durs, where = compute_utt2dur(d)
        write_scp(d / "utt2dur", durs)
        notices.append(f"{d / 'utt2dur'}: written from {where}")
    t = load_tables(d)
    option = f"--rate {rate}"
    for group in (t.utt, t.reco):
        for name, table in group.items():
            if is_audio_list(name):
                atomic_write_text(d / name, "".join(f"{k} {pipe(table[k], tool, option)}\n"
                                                    for k in _c_sorted(table)))
    backup = d / ".backup"
    for name in ("utt2num_samples", "vad_labels.scp", "feats.scp", "cmvn.scp", "utt2num_frames"):
        if (d / name).is_file():
            backup.mkdir(exist_ok=True)
            (d / name).replace(backup / name)
            notices.append(f"{d / name}: moved to {backup} (it no longer fits the resampled audio)")
    return notices
