"""Training and validation examples from Kaldi data dirs.

A data dir holds ``wav.scp`` (noisy input), ``spk1.scp`` (clean target), optionally ``vad_labels.scp``
(kaldiio int32 frame labels, one per centred STFT frame of the whole utterance; ``vad.scp`` of older
dirs is read with a notice) and ``utt2num_samples`` (lengths; read from the audio headers when
absent). With a Kaldi ``segments`` file the audio lists are keyed by recording and each utterance is
its segment (csmvanet.data.utt_audio).

Training segments (:class:`TrainSegments`)
  Each item is a ``segment_seconds`` (default 2 s) piece of one utterance. The segment start is a
  random multiple of ``hop_length`` so the segment's STFT frames are exactly frames of the
  utterance: frame ``j`` of the segment is centred on sample ``start + j*hop``, i.e. utterance frame
  ``start/hop + j``, and its label is ``labels[start/hop + j]`` for ``j < num_frames(seg_len)``.
  Only the two edge frames of a segment see different samples than in the utterance (the segment's
  centred STFT pads them by reflection inside the segment); they keep the label of the utterance
  frame centred on the same sample, which is the frame's real content.
  The randomness is a function of (seed, epoch, utterance index) only: any DataLoader worker, any
  rank and any resume point draws the same segment for the same item, and no RNG state needs to be
  carried between workers.

  Utterances shorter than a segment are zero-PADDED at the end (noisy and clean alike), not tiled:
  tiling would create a splice that exists in neither signal and duplicate speech the VAD labels
  would count twice. The utterance's own frames keep their labels (the last one is centred on
  sample ``(N // hop) * hop``); the frames after it, which see only padding, get VAD label 0. A zero tail is silence for the model, so the loss on it teaches
  the model to keep silence silent.

Validation (:class:`WholeUtterances`)
  Whole utterances, one per batch, in sorted order: the valid loss and PESQ/STOI are those of real
  signals (no padding, no random crop), identical in every epoch and on every number of GPUs. An
  optional ``max_seconds`` crops each to its first seconds to bound memory (attention is quadratic
  in time); the labels are cropped to the matching frames.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from csmvanet.audio.io import AudioError
from csmvanet.audio.stft import STFTConfig
from csmvanet.data.datadir import DataDirError, read_scp, vad_labels_file
from csmvanet.data.utt_audio import UttAudio, read_utterance, utterance_audio, utterance_info


class DatasetError(ValueError):
    """Inconsistent data dir or utterance; the message names the file / utterance and the problem."""


def _read_labels(value: str) -> np.ndarray:
    import kaldiio
    arr = np.asarray(kaldiio.load_mat(value))
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    return arr


class DataDir:
    """The scp lists of one data dir, checked for consistent keys."""

    def __init__(self, path: str | Path, *, require_vad: bool = False):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DatasetError(f"{self.path}: data dir not found")
        self.wav = utterance_audio(self.path, "wav.scp")
        self.clean = utterance_audio(self.path, "spk1.scp")
        vad_scp, notice = vad_labels_file(self.path)
        if notice:
            logging.getLogger("csmvanet.data.dataset").warning(notice)
        self.vad_name = vad_scp.name if vad_scp else "vad_labels.scp"
        self.vad = read_scp(vad_scp) if vad_scp else None
        if require_vad and self.vad is None:
            raise DatasetError(f"{self.path / 'vad_labels.scp'}: no such file (the VAD decoder needs frame "
                               "labels; make them with csmvanet-vad-labels)")
        self.keys = sorted(self.wav, key=lambda k: k.encode())
        if not self.keys:
            raise DatasetError(f"{self.path / 'wav.scp'}: no utterances")
        self._check_keys(self.clean, "spk1.scp")
        if self.vad is not None:
            self._check_keys(self.vad, self.vad_name)
        n_scp = self.path / "utt2num_samples"
        if n_scp.is_file():
            raw = read_scp(n_scp)
            self._check_keys(raw, "utt2num_samples")
            try:
                self.num_samples = {k: int(raw[k]) for k in self.keys}
            except ValueError as e:
                raise DatasetError(f"{n_scp}: not an integer count ({e})") from None
        else:
            self.num_samples = {}
            for k in self.keys:
                try:
                    self.num_samples[k] = utterance_info(self.wav[k])[1]
                except AudioError as e:
                    raise DatasetError(f"{self.path / 'wav.scp'}: utterance {k}: {e}") from None

    def _check_keys(self, mapping: dict, name: str) -> None:
        missing = [k for k in self.keys if k not in mapping]
        if missing:
            more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
            raise DatasetError(f"{self.path / name}: missing {len(missing)} utterance(s) of wav.scp: "
                               f"{', '.join(missing[:3])}{more}")


class _UtteranceReader:
    """Reads (noisy, clean, labels) of one utterance, checking lengths, rates and label counts."""

    def __init__(self, data: DataDir, stft_cfg: STFTConfig, use_vad: bool):
        self.data = data
        self.stft_cfg = stft_cfg
        self.use_vad = use_vad and data.vad is not None

    def _audio(self, scp: str, key: str, value: UttAudio) -> np.ndarray:
        try:
            wave, sr = read_utterance(value)
        except AudioError as e:
            raise DatasetError(f"{self.data.path / scp}: utterance {key}: {e}") from None
        if sr != self.stft_cfg.sample_rate:
            raise DatasetError(f"{self.data.path / scp}: utterance {key}: sample rate {sr} Hz, the model "
                               f"expects {self.stft_cfg.sample_rate} Hz (resample with csmvanet-resample)")
        if wave.ndim != 1:
            raise DatasetError(f"{self.data.path / scp}: utterance {key}: {wave.shape[1]} channels, "
                               "expected mono")
        return wave

    def read(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        noisy = self._audio("wav.scp", key, self.data.wav[key])
        clean = self._audio("spk1.scp", key, self.data.clean[key])
        if noisy.shape[0] != clean.shape[0]:
            raise DatasetError(f"{self.data.path}: utterance {key}: noisy has {noisy.shape[0]} samples, "
                               f"clean {clean.shape[0]}")
        labels = None
        if self.use_vad:
            try:
                labels = _read_labels(self.data.vad[key])
            except Exception as e:  # kaldiio raises assorted errors on bad arks
                raise DatasetError(f"{self.data.path / self.data.vad_name}: utterance {key}: cannot read labels "
                                   f"({type(e).__name__}: {e})") from None
            want = self.stft_cfg.num_frames(noisy.shape[0])
            if labels.shape[0] != want:
                raise DatasetError(f"{self.data.path / self.data.vad_name}: utterance {key}: {labels.shape[0]} "
                                   f"labels, but {noisy.shape[0]} samples give {want} STFT frames "
                                   f"(hop {self.stft_cfg.hop_length}); were the labels made with "
                                   "another STFT config?")
        return noisy, clean, labels


def segment_labels(labels: np.ndarray, start: int, seg_len: int, cfg: STFTConfig) -> np.ndarray:
    """Labels of the frames of ``wave[start:start+seg_len]`` (``start`` a multiple of hop).

    Segment frame ``j`` is utterance frame ``start/hop + j``; frames past the utterance's last frame
    (they exist only when the segment runs into zero padding) get 0.
    """
    hop = cfg.hop_length
    if start % hop:
        raise ValueError(f"segment start {start} is not a multiple of hop_length {hop}")
    n_frames = cfg.num_frames(seg_len)
    first = start // hop
    out = np.zeros(n_frames, dtype=np.float32)
    real = max(0, min(n_frames, labels.shape[0] - first))
    out[:real] = labels[first:first + real]
    return out


class TrainSegments(torch.utils.data.Dataset):
    """Random fixed-length segments, deterministic in (seed, epoch, index); see the module doc."""

    def __init__(self, data_dir: str | Path, stft_cfg: STFTConfig, segment_seconds: float = 2.0,
                 seed: int = 0, use_vad: bool = True):
        self.data = DataDir(data_dir, require_vad=use_vad)
        self.stft_cfg = stft_cfg
        self.seg_len = int(round(segment_seconds * stft_cfg.sample_rate))
        if self.seg_len < stft_cfg.win_length:
            raise DatasetError(f"segment_seconds {segment_seconds} gives {self.seg_len} samples, fewer "
                               f"than one STFT window ({stft_cfg.win_length})")
        self.seed = int(seed)
        self.epoch = 0
        self.reader = _UtteranceReader(self.data, stft_cfg, use_vad)
        self.keys = self.data.keys

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.keys)

    def segment_start(self, index: int, num_samples: int) -> int:
        """The start sample of item ``index`` in the current epoch (a multiple of hop_length)."""
        hop = self.stft_cfg.hop_length
        slack = num_samples - self.seg_len
        if slack <= 0:
            return 0
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        return hop * int(rng.integers(0, slack // hop + 1))

    def __getitem__(self, index: int) -> dict:
        key = self.keys[index]
        noisy, clean, labels = self.reader.read(key)
        n = noisy.shape[0]
        start = self.segment_start(index, n)
        avail = min(self.seg_len, n - start)
        seg_noisy = np.zeros(self.seg_len, dtype=np.float32)
        seg_clean = np.zeros(self.seg_len, dtype=np.float32)
        seg_noisy[:avail] = noisy[start:start + avail]
        seg_clean[:avail] = clean[start:start + avail]
        item = {"key": key, "noisy": torch.from_numpy(seg_noisy), "clean": torch.from_numpy(seg_clean)}
        if labels is not None:
            item["vad"] = torch.from_numpy(segment_labels(labels, start, self.seg_len, self.stft_cfg))
        return item


class WholeUtterances(torch.utils.data.Dataset):
    """Whole utterances in sorted order (validation); optionally cropped to ``max_seconds``."""

    def __init__(self, data_dir: str | Path, stft_cfg: STFTConfig, use_vad: bool = True,
                 max_seconds: float | None = None):
        self.data = DataDir(data_dir, require_vad=use_vad)
        self.stft_cfg = stft_cfg
        self.reader = _UtteranceReader(self.data, stft_cfg, use_vad)
        self.keys = self.data.keys
        self.max_len = None if not max_seconds else int(round(max_seconds * stft_cfg.sample_rate))

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict:
        key = self.keys[index]
        noisy, clean, labels = self.reader.read(key)
        if self.max_len is not None and noisy.shape[0] > self.max_len:
            noisy, clean = noisy[:self.max_len], clean[:self.max_len]
            if labels is not None:
                labels = labels[:self.stft_cfg.num_frames(self.max_len)]
        item = {"key": key, "noisy": torch.from_numpy(np.ascontiguousarray(noisy)),
                "clean": torch.from_numpy(np.ascontiguousarray(clean))}
        if labels is not None:
            item["vad"] = torch.from_numpy(labels.astype(np.float32))
        return item


class GlobalBatchSampler(torch.utils.data.Sampler):
    """Shuffled global batches, sharded over ranks and gradient-accumulation micro-steps.

    Epoch ``e`` uses the permutation drawn from (seed, e); incomplete last batches are dropped.
    Global batch ``s`` (``batch_size`` items) is cut into ``world_size * accum_grad`` equal chunks;
    rank ``r`` at micro-step ``a`` gets chunk ``r * accum_grad + a``. The items of an optimizer step
    therefore do not depend on the number of processes: 2 ranks x 2 items equal 1 rank x 2
    micro-batches of 2. ``start_step`` skips the first steps of the epoch (mid-epoch resume).
    """

    def __init__(self, num_items: int, batch_size: int, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, accum_grad: int = 1, shuffle: bool = True):
        chunks = world_size * accum_grad
        if batch_size % chunks:
            raise ValueError(f"train.batch_size {batch_size} (the global batch of one optimizer step) must "
                             f"be divisible by world_size x accum_grad = {world_size} x {accum_grad}")
        if num_items < batch_size:
            raise ValueError(f"the training set has {num_items} utterance(s), fewer than one batch "
                             f"({batch_size})")
        self.num_items, self.batch_size = num_items, batch_size
        self.seed, self.rank, self.world_size, self.accum = seed, rank, world_size, accum_grad
        self.micro = batch_size // chunks
        self.shuffle = shuffle
        self.epoch = 0
        self.start_step = 0

    @property
    def steps_per_epoch(self) -> int:
        return self.num_items // self.batch_size

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = int(epoch), int(start_step)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "start_step": self.start_step, "seed": self.seed,
                "batch_size": self.batch_size}

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_items)
        return np.random.default_rng([self.seed, self.epoch, 0x5A3D]).permutation(self.num_items)

    def __iter__(self):
        order = self._order()
        for s in range(self.start_step, self.steps_per_epoch):
            base = s * self.batch_size
            for a in range(self.accum):
                c = self.rank * self.accum + a
                yield order[base + c * self.micro: base + (c + 1) * self.micro].tolist()

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.accum


class ShardSampler(torch.utils.data.Sampler):
    """Indices ``rank, rank + world, ...`` in order (validation sharded over ranks)."""

    def __init__(self, indices, rank: int = 0, world_size: int = 1):
        self.indices = list(indices)[rank::world_size]

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def collate(items: list[dict]) -> dict:
    batch = {"keys": [it["key"] for it in items],
             "noisy": torch.stack([it["noisy"] for it in items]),
             "clean": torch.stack([it["clean"] for it in items])}
    if all("vad" in it for it in items):
        batch["vad"] = torch.stack([it["vad"] for it in items])
    return batch


__all__ = ["DataDir", "DataDirError", "DatasetError", "GlobalBatchSampler", "ShardSampler", "TrainSegments",
           "WholeUtterances", "collate", "segment_labels"]
