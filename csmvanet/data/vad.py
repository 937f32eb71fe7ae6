"""Voice activity: frame labels from clean speech, and speech segments from frame probabilities.

Frames are the model's STFT frames (:class:`csmvanet.audio.stft.STFTConfig`): frame ``t`` is centred
at sample ``t * hop`` and a signal of N samples has ``N // hop + 1`` frames, so a label, a
probability and a spectrum column always describe the same stretch of audio.

Labels (:func:`labels_from_clean`), energy based with hangover:

1. Frame energy: mean square of the Hann-windowed frame (the STFT's own window of ``win_length``
   centred in ``n_fft``, reflect padding of ``n_fft // 2`` at both ends, as ``torch.stft(center=True)``
   does), in dB re full scale.
2. A frame is speech when its energy is above BOTH ``reference + threshold_db`` (``reference`` =
   the utterance's maximum frame energy, or its ``ref_quantile`` quantile) AND ``floor_db``
   (absolute, dBFS; keeps silent or near-silent files all-zero); with ``noise_quantile`` set, also
   above ``noise_margin_db`` over the recording's own noise floor: the ``noise_quantile`` quantile of
   the energies of the frames above ``floor_db`` (digital silence left out). A volunteer recording
   whose noise floor lies 20-40 dB below its loudest frame otherwise has its noise called speech.
3. Silence runs shorter than ``min_silence_frames`` between two speech runs become speech.
4. Speech runs shorter than ``min_speech_frames`` become silence.
5. Each speech run is extended by ``hangover_frames`` after its end (and ``pre_frames`` before its
   start), clipped to the utterance.

Segments (:func:`probs_to_segments`): frames with probability >= threshold are speech (one
threshold, no hysteresis); gaps shorter than ``min_silence`` seconds are bridged first, then speech
runs shorter than ``min_speech`` seconds are dropped. Frame ``t`` stands for the time interval
``[(t - 0.5) hop, (t + 0.5) hop)`` clipped to the signal, so a run of frames ``a..b`` becomes the
segment ``[max(0, (a - 0.5) hop), (b + 0.5) hop]`` / sample rate.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import kaldiio
import numpy as np
from tqdm import tqdm

from csmvanet.audio.io import AudioError, read_audio
from csmvanet.audio.stft import STFTConfig
from csmvanet.base.atomic_files import atomic_path, atomic_write_text
from csmvanet.base.interrupts import Interrupted
from csmvanet.base.process_pool import run_jobs


@dataclass(frozen=True)
class VADLabelConfig:
    threshold_db: float = -40.0     # relative to the reference frame energy
    floor_db: float = -70.0         # absolute floor, dB re full scale (mean square)
    ref_quantile: float = 1.0       # 1.0: the maximum frame energy; e.g. 0.99 is robust to clicks
    min_speech_frames: int = 8      # shorter speech runs are dropped (8 frames = 50 ms at hop 100)
    min_silence_frames: int = 16    # shorter gaps are filled (16 frames = 100 ms)
    hangover_frames: int = 3        # frames kept as speech after each speech run
    pre_frames: int = 0             # frames marked as speech before each speech run
    noise_quantile: float | None = None  # e.g. 0.05: also above (this quantile of frames > floor_db) ...
    noise_margin_db: float = 6.0         # ... + this margin (the clip's own noise floor); None: off

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "VADLabelConfig":
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown vad_labels option(s): {sorted(unknown)}; "
                             f"known: {sorted(cls.__dataclass_fields__)}")
        cfg = cls(**d)
        if cfg.noise_quantile is not None and not 0.0 <= cfg.noise_quantile < 1.0:
            raise ValueError(f"vad_labels.noise_quantile must be in [0, 1) or null, got {cfg.noise_quantile}")
        if not 0.0 < cfg.ref_quantile <= 1.0:
            raise ValueError(f"vad_labels.ref_quantile must be in (0, 1], got {cfg.ref_quantile}")
        for name in ("min_speech_frames", "min_silence_frames", "hangover_frames", "pre_frames"):
            if int(getattr(cfg, name)) != getattr(cfg, name) or getattr(cfg, name) < 0:
                raise ValueError(f"vad_labels.{name} must be a non-negative integer, got {getattr(cfg, name)!r}")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


def _stft_window(cfg: STFTConfig) -> np.ndarray:
    """Periodic Hann of win_length centred in n_fft (torch.stft's placement)."""
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.win_length) / cfg.win_length)
    full = np.zeros(cfg.n_fft)
    left = (cfg.n_fft - cfg.win_length) // 2
    full[left:left + cfg.win_length] = win
    return full


def frame_energy_db(wave: np.ndarray, stft_cfg: STFTConfig, chunk: int = 4096) -> np.ndarray:
    """Mean square of each windowed STFT frame in dB -> float64 [num_frames(N)]."""
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"expected a mono waveform, got shape {tuple(np.shape(wave))}")
    n, hop, pad = x.shape[0], stft_cfg.hop_length, stft_cfg.n_fft // 2
    if n == 0:
        raise ValueError("empty waveform (0 samples)")
    mode = "reflect" if n > pad else "constant"
    xp = np.pad(x, pad, mode=mode)
    w2 = _stft_window(stft_cfg) ** 2
    w2 = w2 / w2.sum()
    n_frames = stft_cfg.num_frames(n)
    sq = xp * xp
    frames = np.lib.stride_tricks.sliding_window_view(sq, stft_cfg.n_fft)[::hop][:n_frames]
    out = np.empty(n_frames)
    for s in range(0, n_frames, chunk):  # bounded temporary memory on long files
        out[s:s + chunk] = np.einsum("ij,j->i", frames[s:s + chunk], w2)
    return 10.0 * np.log10(np.maximum(out, 1e-20))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end_exclusive)] of the True runs of a 1-D boolean array."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[0::2].tolist(), d[1::2].tolist()))


def _fill_gaps(mask: np.ndarray, min_gap: int) -> np.ndarray:
    """Set to True the False runs shorter than min_gap that lie between two True runs."""
    mask = mask.copy()
    runs = _runs(mask)
    for (_, e0), (s1, _) in zip(runs[:-1], runs[1:]):
        if s1 - e0 < min_gap:
            mask[e0:s1] = True
    return mask


def _drop_short(mask: np.ndarray, min_len: int) -> np.ndarray:
    mask = mask.copy()
    for s, e in _runs(mask):
        if e - s < min_len:
            mask[s:e] = False
    return mask


def labels_from_clean(wave: np.ndarray, stft_cfg: STFTConfig | None = None,
                      vad_cfg: VADLabelConfig | None = None) -> np.ndarray:
    """Energy-based 0/1 speech labels of a clean waveform [N] -> int32 [stft_cfg.num_frames(N)]."""
    stft_cfg = stft_cfg or STFTConfig()
    vad_cfg = vad_cfg or VADLabelConfig()
    e = frame_energy_db(wave, stft_cfg)
    if not np.all(np.isfinite(e)):
        raise ValueError("waveform holds NaN or Inf samples")
    ref = np.max(e) if vad_cfg.ref_quantile >= 1.0 else np.quantile(e, vad_cfg.ref_quantile)
    threshold = ref + vad_cfg.threshold_db
    active = e[e > vad_cfg.floor_db]
    if vad_cfg.noise_quantile is not None and active.size:
        threshold = max(threshold, float(np.quantile(active, vad_cfg.noise_quantile)) + vad_cfg.noise_margin_db)
    speech = (e > threshold) & (e > vad_cfg.floor_db)
    speech = _fill_gaps(speech, int(vad_cfg.min_silence_frames))
    speech = _drop_short(speech, int(vad_cfg.min_speech_frames))
    if vad_cfg.hangover_frames or vad_cfg.pre_frames:
        out = speech.copy()
        n = len(out)
        for s, e_ in _runs(speech):
            out[max(0, s - int(vad_cfg.pre_frames)):min(n, e_ + int(vad_cfg.hangover_frames))] = True
        speech = out
    return speech.astype(np.int32)


def probs_to_segments(probs: Sequence[float] | np.ndarray, stft_cfg: STFTConfig | None = None,
                      threshold: float = 0.5, min_speech: float = 0.25, min_silence: float = 0.1,
                      num_samples: int | None = None) -> list[tuple[float, float]]:
    """Frame speech probabilities [T] -> speech segments [(start_s, end_s)] (see module docstring).

    ``min_speech`` / ``min_silence`` are in seconds; gaps shorter than ``min_silence`` are bridged,
    then segments shorter than ``min_speech`` are dropped. ``num_samples`` (if known) clips the last
    segment's end to the signal's duration.
    """
    stft_cfg = stft_cfg or STFTConfig()
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    if p.size == 0:
        return []
    if not np.all(np.isfinite(p)):
        raise ValueError("VAD probabilities hold NaN or Inf")
    hop, sr = stft_cfg.hop_length, stft_cfg.sample_rate
    frame_s = hop / sr
    mask = p >= threshold
    # A gap of g frames lasts g * hop samples; bridge those strictly shorter than min_silence.
    mask = _fill_gaps(mask, int(np.ceil(min_silence / frame_s - 1e-9)))
    end_limit = (num_samples if num_samples is not None else (len(p) - 1) * hop) / sr
    segs = []
    for a, b in _runs(mask):  # b exclusive
        start = max(0.0, (a - 0.5) * frame_s)
        end = min(end_limit, (b - 0.5) * frame_s)
        if end - start >= min_speech - 1e-9 and end > start:
            segs.append((start, end))
    return segs


def _fmt_segments(segments: Mapping[str, Sequence[tuple[float, float]]]) -> list[tuple[str, str, float, float]]:
    rows = []
    for utt, segs in segments.items():
        if not utt or any(c.isspace() for c in utt):
            raise ValueError(f"invalid utterance id {utt!r} (empty or with white space)")
        for start, end in segs:
            if not (np.isfinite(start) and np.isfinite(end)) or end < start or start < 0:
                raise ValueError(f"utterance {utt!r}: invalid segment ({start}, {end})")
            rows.append((utt, f"{utt}-{int(round(start * 100)):07d}-{int(round(end * 100)):07d}",
                         float(start), float(end)))
    return rows


def write_segments(path: str | Path, segments: Mapping[str, Sequence[tuple[float, float]]]) -> None:
    """Kaldi ``segments`` file: ``<utt>-<start_cs>-<end_cs> <utt> <start> <end>`` (seconds, 2 decimals).

    Segment ids carry the start and end in centiseconds, zero padded to 7 digits; lines are sorted
    by segment id (C locale). Written atomically.
    """
    rows = sorted(_fmt_segments(segments), key=lambda r: r[1].encode())
    atomic_write_text(path, "".join(f"{sid} {utt} {s:.2f} {e:.2f}\n" for utt, sid, s, e in rows))


def write_rttm(path: str | Path, segments: Mapping[str, Sequence[tuple[float, float]]]) -> None:
    """RTTM: ``SPEAKER <utt> 1 <start> <dur> <NA> <NA> speech <NA> <NA>`` (seconds, 3 decimals), atomic."""
    rows = sorted(_fmt_segments(segments), key=lambda r: (r[0].encode(), r[2]))
    atomic_write_text(path, "".join(f"SPEAKER {utt} 1 {s:.3f} {e - s:.3f} <NA> <NA> speech <NA> <NA>\n"
                                    for utt, _, s, e in rows))


# ----------------------------------------------------------------------------------------------
# batch labelling (csmvanet-vad-labels)

_RECIPE_SECTIONS = {"stft", "model", "loss", "train", "optim", "scheduler", "data", "vad_labels"}


def configs_from_dict(cfg: Mapping | None) -> tuple[STFTConfig, VADLabelConfig]:
    """(STFTConfig, VADLabelConfig) from a whole recipe config (``stft:`` and ``vad_labels:``
    sections; missing ones take defaults) or from a plain ``vad_labels`` section."""
    cfg = dict(cfg or {})
    if _RECIPE_SECTIONS & set(cfg):
        return STFTConfig.from_dict(cfg.get("stft")), VADLabelConfig.from_dict(cfg.get("vad_labels"))
    return STFTConfig(), VADLabelConfig.from_dict(cfg)


def _label_one(args) -> tuple[str, np.ndarray | None, str | None]:
    key, value, stft_cfg, vad_cfg, list_name = args
    try:
        wave, sr = read_audio(value)
        if sr != stft_cfg.sample_rate:
            raise AudioError(f"{value}: sample rate {sr} Hz, the STFT config expects {stft_cfg.sample_rate} Hz")
        if wave.ndim != 1:
            raise AudioError(f"{value}: {wave.shape[1]} channels, expected mono clean speech")
        if wave.shape[0] == 0:
            raise AudioError(f"{value}: zero samples")
        return key, labels_from_clean(wave, stft_cfg, vad_cfg), None
    except (AudioError, ValueError, OSError) as e:
        return key, None, f"{list_name}: key '{key}': {e}" if list_name else f"{key}: {e}"


def label_scp(entries: Mapping[str, str], stft_cfg: STFTConfig, vad_cfg: VADLabelConfig, failures: list[str],
              nj: int = 1, progress: bool = True, list_name: str | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (key, int32 labels) for every (key, audio) entry, in key order (C locale).

    Entries that fail are appended to ``failures`` (one line naming the key, file and problem;
    with ``list_name``, the list too) and skipped. Results stream: memory does not grow with the number of utterances.
    """
    jobs = [(k, entries[k], stft_cfg, vad_cfg, list_name) for k in sorted(entries, key=str.encode)]
    with tqdm(total=len(jobs), desc="vad labels", unit="utt", disable=not progress) as bar:
        results = run_jobs(_label_one, jobs, nj, chunksize=max(1, min(16, len(jobs) // (nj * 4))),
                           describe=lambda job: f"utterance {job[0]} ({job[1]})")
        done = 0
        try:
            for key, lab, err in results:
                done += 1
                bar.update(1)
                if err is None:
                    yield key, lab
                else:
                    failures.append(err)
        except Interrupted as e:
            e.finished = e.finished or f"labelled {done} of {len(jobs)} utterances (no labels written)"
            raise
        finally:
            results.close()  # stops the workers when the caller gives up early


def write_label_ark(out_dir: str | Path, items: Iterable[tuple[str, np.ndarray]], name: str = "vad_labels") -> tuple[Path, Path]:
    """Write ``<name>.ark`` + ``<name>.scp`` (kaldiio int32 vectors, in the order given) safely.

    The ark is written under a temporary name; then the old scp is removed, the ark renamed into
    place and the new scp (naming the final ark by absolute path) written atomically. An
    interruption leaves either the old pair, or an ark with no scp, never an scp that lies.
    """
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    ark, scp = out_dir / f"{name}.ark", out_dir / f"{name}.scp"
    lines = []
    with atomic_path(ark) as tmp_ark:
        with open(tmp_ark, "wb") as f:
            for key, lab in items:
                if not key or any(c.isspace() for c in key):
                    raise ValueError(f"invalid key {key!r} (empty or with white space)")
                pos = f.tell()
                kaldiio.save_ark(f, {key: np.asarray(lab, dtype=np.int32)})
                lines.append(f"{key} {ark}:{pos + len(key.encode()) + 1}\n")
        if scp.exists():
            scp.unlink()  # the old scp must never point into the new ark
    atomic_write_text(scp, "".join(lines))
    return ark, scp
