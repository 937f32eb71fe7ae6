"""Mixture specifications: drawing them from speech/noise lists and an SNR spec, and the spec file.

Step 1 of the simulation (step 2, mixing, is :mod:`csmvanet.data.simulate`):
:func:`make_specs` turns a speech list, a noise list and an SNR spec into mixture
specifications, deterministically: every random choice of mixture ``utt_id`` comes from a numpy
Generator seeded with ``(seed, crc32(utt_id))``; which speech utterance a mixture uses comes from
seeded permutations of the speech list. The result depends only on the inputs and the seed.

Spec file (:func:`write_spec` / :func:`read_spec`): UTF-8, tab-separated, lines starting with ``#``
are comments, then one header line and one mixture per line. Nothing in it is ever executed or
unpickled. Columns:

=================  ============================================================================
utt_id             mixture id (also the wav file name)
spk                speaker (from the speech list's utt2spk, else the mixture's utt_id)
speech_id          key of the speech utterance in the speech scp
speech             its scp value (a path; ``cmd |`` pipes and ``x.ark:off`` are read whole)
speech_offset      first speech sample used
noise_id           key of the noise in the noise scp
noise_type         noise label written to utt2noise (from noise2type, else noise_id)
noise              scp value of the noise
noise_offset       first noise sample used (the noise is tiled from there if too short)
length             mixture length in samples
snr_db             target SNR (dB)
speech_gain_db     level change applied to the speech before mixing (dB)
=================  ============================================================================
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from csmvanet.audio.io import AudioError, audio_info
from csmvanet.base.atomic_files import atomic_write_text
from csmvanet.base.keys import RULE as KEY_RULE, key_problem
from csmvanet.data.datadir import read_scp

class SpecError(ValueError):
    """A malformed mixture specification or SNR spec; the message names the file/line or value."""


@dataclass(frozen=True)
class MixSpec:
    utt_id: str
    spk: str
    speech_id: str
    speech: str
    speech_offset: int
    noise_id: str
    noise_type: str
    noise: str
    noise_offset: int
    length: int
    snr_db: float
    speech_gain_db: float = 0.0


SPEC_COLUMNS = tuple(f.name for f in fields(MixSpec))
_INT_COLS = {"speech_offset", "noise_offset", "length"}
_FLOAT_COLS = {"snr_db", "speech_gain_db"}


@dataclass(frozen=True)
class Source:
    """One entry of a speech or noise list."""

    key: str
    value: str
    num_samples: int


# ----------------------------------------------------------------------------------------------
# numbers and SNR specs

def fmt_num(x: float) -> str:
    """Shortest fixed notation with at most 4 decimals: 5.0 -> '5', -2.5 -> '-2.5'."""
    s = f"{float(x):.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


class ValueSpec:
    """A list of values ('-5,0,5' or '5') or a uniform range ('uniform:-10:15')."""

    def __init__(self, text: str, what: str = "SNR"):
        self.text = str(text).strip()
        self.what = what
        try:
            if self.text.startswith("uniform:"):
                _, lo, hi = self.text.split(":")
                self.kind, self.lo, self.hi = "uniform", float(lo), float(hi)
                if not (math.isfinite(self.lo) and math.isfinite(self.hi)) or self.hi < self.lo:
                    raise ValueError
                self.values: list[float] = []
            else:
                self.kind = "list"
                self.values = [float(v) for v in self.text.split(",") if v.strip() != ""]
                if not self.values or not all(math.isfinite(v) for v in self.values):
                    raise ValueError
        except ValueError:
            raise SpecError(f"bad {what} spec {text!r}: use a list like '-5,0,5' or a range "
                            f"like 'uniform:-10:15'") from None

    def draw(self, rng: np.random.Generator) -> float:
        """One value, rounded to 4 decimals so that the written spec is the exact truth."""
        if self.kind == "uniform":
            v = rng.uniform(self.lo, self.hi)
        else:
            v = self.values[int(rng.integers(len(self.values)))]
        return float(fmt_num(v))


# ----------------------------------------------------------------------------------------------
# spec generation

def stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def mixture_rng(seed: int, utt_id: str) -> np.random.Generator:
    """The Generator of one mixture: a function of the seed and the id only."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stable_hash(utt_id)])


def load_sources(scp: str | Path, lengths: str | Path | None = None, sr: int | None = None,
                 progress: bool = False) -> tuple[list[Source], list[str]]:
    """Entries of an scp with their lengths -> (sources sorted by key, error lines).

    Lengths come from ``lengths`` (an utt2num_samples-style file) when given, else from the audio
    headers (which also checks the sample rate against ``sr``). Unusable entries are reported in the
    error list (naming the key and file) and left out.
    """
    entries = read_scp(scp)
    known = read_scp(lengths) if lengths is not None else None
    out, errors = [], []
    items = sorted(entries.items(), key=lambda kv: kv[0].encode())
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=f"reading {Path(scp).name}", unit="file")
    for key, value in items:
        if "\t" in value or "\n" in value:
            errors.append(f"{scp}: {key}: the value holds a tab or newline")
            continue
        try:
            if known is not None:
                if key not in known:
                    raise AudioError(f"{key}: no length in {lengths}")
                try:
                    n = int(known[key])
                except ValueError:
                    raise AudioError(f"{lengths}: {key}: length {known[key]!r} is not an integer") from None
            else:
                rate, n, ch = audio_info(value)
                if sr is not None and rate != sr:
                    raise AudioError(f"{value}: sample rate {rate} Hz, expected {sr} Hz (resample first)")
                if ch != 1:
                    raise AudioError(f"{value}: {ch} channels, expected mono")
            if n <= 0:
                raise AudioError(f"{value}: zero samples")
        except AudioError as e:
            errors.append(f"{scp}: {key}: {e}")
            continue
        out.append(Source(key, value, int(n)))
    return out, errors


def _offset(rng: np.random.Generator, available: int, length: int) -> int:
    if available > length:
        return int(rng.integers(0, available - length + 1))
    return 0


def _noise_offset(rng: np.random.Generator, available: int, length: int) -> int:
    if available >= length:
        return int(rng.integers(0, available - length + 1))
    return int(rng.integers(0, available))  # tiled from a random point


def make_specs(speech: Sequence[Source], noises: Sequence[Source], snrs: str | ValueSpec, *, seed: int = 0,
               num: int | None = None, per_condition: int | None = None, length: int | None = None,
               speech_gain_db: str | ValueSpec = "0", utt2spk: Mapping[str, str] | None = None,
               noise2type: Mapping[str, str] | None = None) -> list[MixSpec]:
    """Mixture specifications (deterministic by ``seed``).

    Modes: by default one mixture per speech utterance (utt_id = speech id, in key order);
    ``num``: that many mixtures, cycling through seeded permutations of the speech list (utt_id =
    ``<speech_id>-<index:06d>``); ``per_condition`` (needs an SNR list): that many mixtures for every
    (noise type, SNR) pair, noise files drawn within the type. ``length`` (samples): clip length;
    None takes whole utterances. Noise files and SNRs (in the first two modes) are drawn per mixture.
    """
    snr_spec = snrs if isinstance(snrs, ValueSpec) else ValueSpec(snrs, "SNR")
    gain_spec = speech_gain_db if isinstance(speech_gain_db, ValueSpec) else ValueSpec(speech_gain_db, "speech gain")
    if not speech:
        raise SpecError("the speech list is empty")
    if not noises:
        raise SpecError("the noise list is empty")
    if num is not None and per_condition is not None:
        raise SpecError("give either num or per_condition, not both")
    if length is not None and length <= 0:
        raise SpecError(f"clip length must be positive, got {length} samples")
    speech = sorted(speech, key=lambda s: s.key.encode())
    noises = sorted(noises, key=lambda s: s.key.encode())
    utt2spk = utt2spk or {}
    noise2type = noise2type or {}
    types: dict[str, list[Source]] = {}
    for nz in noises:
        types.setdefault(noise2type.get(nz.key, nz.key), []).append(nz)

    def speech_order(count: int) -> list[Source]:
        order: list[Source] = []
        cycle = 0
        while len(order) < count:
            perm = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EEC, cycle]).permutation(len(speech))
            order.extend(speech[i] for i in perm)
            cycle += 1
        return order[:count]

    plan: list[tuple[str, Source, str | None, float | None]] = []  # (utt, speech, noise type, snr)
    if per_condition is not None:
        if snr_spec.kind != "list":
            raise SpecError("per_condition needs a list of SNRs, not a range")
        conds = [(t, snr) for t in sorted(types, key=str.encode) for snr in snr_spec.values]
        order = speech_order(len(conds) * per_condition)
        i = 0
        for t, snr in conds:
            for _ in range(per_condition):
                plan.append((f"{order[i].key}-{i:06d}", order[i], t, float(fmt_num(snr))))
                i += 1
    elif num is not None:
        order = speech_order(num)
        plan = [(f"{sp.key}-{i:06d}", sp, None, None) for i, sp in enumerate(order)]
    else:
        plan = [(sp.key, sp, None, None) for sp in speech]

    specs = []
    type_names = sorted(types, key=str.encode)
    for utt, sp, ntype, snr in plan:
        rng = mixture_rng(seed, utt)
        if ntype is None:
            ntype = type_names[int(rng.integers(len(type_names)))]
        pool = types[ntype]
        nz = pool[int(rng.integers(len(pool)))]
        if snr is None:
            snr = snr_spec.draw(rng)
        gain = gain_spec.draw(rng)
        n = sp.num_samples if length is None else int(length)
        specs.append(MixSpec(utt_id=utt, spk=utt2spk.get(sp.key, utt), speech_id=sp.key, speech=sp.value,
                             speech_offset=_offset(rng, sp.num_samples, n), noise_id=nz.key, noise_type=ntype,
                             noise=nz.value, noise_offset=_noise_offset(rng, nz.num_samples, n), length=n,
                             snr_db=snr, speech_gain_db=gain))
    return specs


# ----------------------------------------------------------------------------------------------
# spec files

def _cell(v) -> str:
    return fmt_num(v) if isinstance(v, float) else str(v)


def write_spec(path: str | Path, specs: Iterable[MixSpec], comments: Sequence[str] = (),
               extra: Mapping[str, Mapping[str, object]] | None = None) -> None:
    """Write a spec file atomically (see the module docstring); ``extra`` adds columns per utt."""
    specs = list(specs)
    extra_cols = sorted({c for row in (extra or {}).values() for c in row}) if extra else []
    lines = [f"# {c}" for c in comments]
    lines.append("\t".join(SPEC_COLUMNS + tuple(extra_cols)))
    for s in specs:
        cells = [_cell(getattr(s, c)) for c in SPEC_COLUMNS]
        if extra_cols:
            cells += [_cell(extra[s.utt_id][c]) for c in extra_cols]
        for c in cells:
            if "\t" in c or "\n" in c:
                raise SpecError(f"{path}: {s.utt_id}: a value holds a tab or newline: {c!r}")
        lines.append("\t".join(cells))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _check_id(path, n, utt):
    problem = key_problem(utt)
    if problem is not None:
        raise SpecError(f"{path}:{n}: invalid utt_id: {problem} (ids must have {KEY_RULE})")


def read_spec(path: str | Path) -> list[MixSpec]:
    """Read a spec file (extra columns, e.g. those of mixtures.tsv, are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    specs, header, seen = [], None, set()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cells = line.split("\t")
            if header is None:
                missing = [c for c in SPEC_COLUMNS if c not in cells]
                if missing:
                    raise SpecError(f"{path}:{n}: header lacks column(s) {missing} "
                                    f"(expected tab-separated {' '.join(SPEC_COLUMNS)})")
                header = cells
                continue
            if len(cells) != len(header):
                raise SpecError(f"{path}:{n}: {len(cells)} fields, the header has {len(header)}")
            row = dict(zip(header, cells))
            vals = {}
            for c in SPEC_COLUMNS:
                v = row[c]
                try:
                    if c in _INT_COLS:
                        vals[c] = int(v)
                    elif c in _FLOAT_COLS:
                        vals[c] = float(v)
                        if not math.isfinite(vals[c]):
                            raise ValueError
                    else:
                        vals[c] = v
                except ValueError:
                    raise SpecError(f"{path}:{n}: column {c}: {v!r} is not a valid number") from None
            _check_id(path, n, vals["utt_id"])
            if vals["length"] <= 0 or vals["speech_offset"] < 0 or vals["noise_offset"] < 0:
                raise SpecError(f"{path}:{n}: length must be > 0 and offsets >= 0")
            if vals["utt_id"] in seen:
                raise SpecError(f"{path}:{n}: duplicate utt_id {vals['utt_id']!r}")
            seen.add(vals["utt_id"])
            specs.append(MixSpec(**vals))
    if header is None:
        raise SpecError(f"{path}: no header line")
    return specs
