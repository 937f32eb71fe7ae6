"""bench/gpu_check.py in its CPU mode (what runs where there is no CUDA): every part, one JSON report."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_every_part_on_the_cpu_and_says_so(tmp_path):
    out = tmp_path / "report.json"
    p = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--cpu", "--out", str(out),
                        "--workdir", str(tmp_path / "work")], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["ok"] and r["mode"] == "cpu-tiny" and "CPU" in r["note"] and "gloo" in r["note"]
    assert "mode cpu-tiny" in p.stdout
    modes = r["amp"]["modes"]
    assert set(modes) == {"none", "bf16", "fp16"}
    for m in modes.values():
        assert m["used_amp"] == "none"                 # the trainer ignores amp on the CPU, and the report says so
        assert len(m["losses"]) == 20 and m["finite"] and m["falling"] and m["s_per_step"] > 0
    assert r["ddp"]["backend"] == "gloo" and r["ddp"]["processes"] == 2 and r["ddp"]["global_step"] == 10
    e = r["enhance"]
    assert e["finite"] and e["rtf"] > 0 and e["chunked_vs_whole_si_sdr_db"] > 10
    assert r["recipe"]["ok"] and r["recipe"]["ngpu"] == 0 and "PESQ" in r["recipe"]["results"]
