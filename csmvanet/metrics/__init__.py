"""Objective metrics: PESQ, STOI, CSIG/CBAK/COVL (+ LLR, WSS, segSNR), SI-SDR, VAD; scoring folders.

- :mod:`csmvanet.metrics.composite`: vectorised LLR, WSS, segSNR and the composite measures of
  Hu & Loizou (2008), following Loizou's ``composite.m``.
- :mod:`csmvanet.metrics.basic`: PESQ (``pesq``), STOI (``pystoi``), SI-SDR, VAD frame metrics.
- :mod:`csmvanet.metrics.scoring`: scoring lists of utterances in parallel into Kaldi-style files.
- :mod:`csmvanet.metrics.results`: per-utterance results and the files of a scoring folder (write, read).

The reports made from a scoring folder (RESULTS.md, report.html, figures) are in :mod:`csmvanet.reports`.
"""
from csmvanet.metrics.basic import pesq_score, si_sdr, stoi_score, vad_metrics
from csmvanet.metrics.composite import composite_measures, llr_frames, segsnr_frames, wss_frames

__all__ = ["pesq_score", "stoi_score", "si_sdr", "vad_metrics", "composite_measures",
           "llr_frames", "wss_frames", "segsnr_frames"]
