"""The batch tools that read audio lists (score, resample, vad_labels, simulate) and the arguments
that run each on the test data of :func:`test_score_cli.make_data` (tests of workers and signals)."""
from __future__ import annotations

from pathlib import Path

from csmvanet.data.datadir import read_scp

BATCH_TOOLS = ["score", "resample", "vad_labels", "simulate"]


def batch_tool_args(tool: str, root: Path, spk1: Path, out: Path, tmp_path: Path) -> list:
    """Arguments of ``csmvanet.bin.<tool>`` reading ``spk1`` (the reference list of the data
    under ``root``) and writing under ``out`` (or ``tmp_path``); no --nj."""
    if tool == "score":
        return ["--ref_scp", spk1, "--enh_scp", root / "exp" / "enh" / "enhanced.scp", "--out_dir", out,
                "--progress", "false"]
    if tool == "resample":
        return ["--scp", spk1, "--fs", 8000, "--out_dir", out, "--out_scp", tmp_path / "o.scp", "--quiet"]
    if tool == "vad_labels":
        return ["--scp", spk1, "--out_dir", out, "--quiet"]
    assert tool == "simulate", tool
    lengths = tmp_path / "lengths"
    lengths.write_text("".join(f"{k} 16000\n" for k in read_scp(spk1)))
    noise = tmp_path / "noise.scp"
    noise.write_text(f"n1 {read_scp(root / 'data' / 'wav.scp')['utt0']}\n")
    return ["--make_spec", "--speech_scp", spk1, "--speech_lengths", lengths, "--noise_scp", noise,
            "--spec", tmp_path / "spec.tsv", "--snrs", "5", "--data_dir", out / "data",
            "--out_wav_dir", out / "wav", "--quiet"]
