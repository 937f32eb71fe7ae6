"""ESPnet's scoring files beside ours, so that ESPnet's ``show_enh_score.sh`` shows our table.

ESPnet's enh.sh (stage "Scoring") leaves in ``<exp>/<inference_tag>_<set>/scoring/``:

    <METRIC>_spk1          `utt value` per utterance, keys sorted (C locale), one file per metric
    wav_spk1               `utt path` of the enhanced audio
    result_<metric>.txt    one line: the mean over the utterances, two decimals ("%.2f")

and ``show_enh_score.sh <exp root>`` finds ``<exp>/*/scoring/result_stoi.txt`` and prints one row per
set with the columns pesq, estoi, stoi, sar, sdr, sir, si_snr that have a ``result_<metric>.txt``.
Our ``<exp>/enhanced_<set>/scoring/`` is that folder (``--inference_tag`` defaults to ``enhanced``, as
ESPnet's), so :func:`write_espnet_scoring` writes those files there from our per-utterance results.

The metric names are ESPnet's upper-case ``--scoring_protocol`` names. ``SI_SNR`` is our SI-SDR
(both signals zero-mean, scale-invariant: the same formula ESPnet calls SI_SNR). PESQ, STOI,
CSIG, CBAK, COVL and SSNR (segmental SNR) are ours under their usual names. ESPnet's BSS-Eval
metrics (SDR, SAR, SIR) and ESTOI are not computed by csmvanet-score: asking for them is refused
(:func:`parse_protocol`). Means skip undefined (NaN) values, like the means of our RESULTS.md.
"""
from __future__ import annotations

import math
from pathlib import Path

from csmvanet.base.atomic_files import atomic_write_text
from csmvanet.metrics.results import UttResult
from csmvanet.reports.results_md import system_means

#: ESPnet metric name -> our per-utterance metric.
PROTOCOL_METRICS = {"PESQ": "pesq", "STOI": "stoi", "SI_SNR": "si_sdr", "CSIG": "csig", "CBAK": "cbak",
                    "COVL": "covl", "SSNR": "segsnr"}
#: ESPnet names we do not compute, with the reason.
NOT_COMPUTED = {"SDR": "BSS-Eval SDR", "SAR": "BSS-Eval SAR", "SIR": "BSS-Eval SIR", "ESTOI": "extended STOI"}
DEFAULT_PROTOCOL = "PESQ STOI SI_SNR CSIG CBAK COVL SSNR"


def parse_protocol(text: str) -> list[str]:
    """The metric names of a ``--scoring_protocol`` value ("STOI SI_SNR", case-insensitive);
    ValueError naming the first one we cannot write."""
    names = [n.upper() for n in text.replace(",", " ").split()]
    if not names:
        raise ValueError("--scoring_protocol is empty: give metric names, e.g. "
                         f"\"{DEFAULT_PROTOCOL}\"")
    for n in names:
        if n in NOT_COMPUTED:
            raise ValueError(f"--scoring_protocol {n}: csmvanet-score does not compute {NOT_COMPUTED[n]}; "
                             f"choose from {' '.join(PROTOCOL_METRICS)}")
        if n not in PROTOCOL_METRICS:
            raise ValueError(f"--scoring_protocol {n}: unknown metric; choose from {' '.join(PROTOCOL_METRICS)}")
    return list(dict.fromkeys(names))


def _value(v: float) -> str:
    return "nan" if v is None or math.isnan(v) else repr(float(v))


def write_espnet_scoring(out_dir: Path, results: list[UttResult], enhanced: dict[str, str],
                         protocol: list[str], spk: int = 1) -> list[Path]:
    """Write ESPnet's files of the enhanced system into ``out_dir`` (see the module docstring);
    ``enhanced`` is the enhanced list (utt -> path). Returns the files written."""
    out_dir = Path(out_dir)
    rows = sorted((r for r in results if r.error is None and "enhanced" in r.scores), key=lambda r: r.utt.encode())
    means, _ = system_means(rows, "enhanced")
    for name in PROTOCOL_METRICS:  # files of an earlier run with another protocol
        if name not in protocol:
            (out_dir / f"{name}_spk{spk}").unlink(missing_ok=True)
            (out_dir / f"result_{name.lower()}.txt").unlink(missing_ok=True)
    written = []
    for name in protocol:
        ours = PROTOCOL_METRICS[name]
        per_utt = out_dir / f"{name}_spk{spk}"
        atomic_write_text(per_utt, "".join(f"{r.utt} {_value(r.scores['enhanced'].get(ours, math.nan))}\n"
                                           for r in rows))
        result = out_dir / f"result_{name.lower()}.txt"
        mean = means.get(ours, math.nan)
        atomic_write_text(result, "nan\n" if math.isnan(mean) else f"{mean:.2f}\n")
        written += [per_utt, result]
    wav = out_dir / f"wav_spk{spk}"
    atomic_write_text(wav, "".join(f"{r.utt} {enhanced[r.utt]}\n" for r in rows if r.utt in enhanced))
    return written + [wav]


__all__ = ["PROTOCOL_METRICS", "NOT_COMPUTED", "DEFAULT_PROTOCOL", "parse_protocol", "write_espnet_scoring"]
