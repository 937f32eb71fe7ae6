"""ONNX export (csmvanet-export) and the inference backends (Enhancer(backend=...), --backend).

The onnxruntime backend must give the torch backend's output (SI-SDR >= 40 dB) and VAD through the
same chunking; an ONNX file that does not belong to the model is refused in one line.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from csmvanet.audio.synthetic import noise, speech_like
from csmvanet.base.errors import ModelFileError
from csmvanet.experiment.checkpoint import save_checkpoint
from csmvanet.infer.enhancer import Enhancer
from csmvanet.metrics import si_sdr
from csmvanet.nets import build_model

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install 'csmvanet[onnx]'")
pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install 'csmvanet[onnx]'")

PY = sys.executable
SR = 16000
CFG = {"model": {"channels": [8, 16], "num_conformers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 7,
                 "dropout": 0.0, "rel_pos_clamp": 200}}


def _exp(path: Path, seed: int) -> Path:
    path.mkdir(parents=True)
    torch.manual_seed(seed)
    (path / "config.yaml").write_text(yaml.safe_dump(CFG))
    save_checkpoint(build_model(CFG).state_dict(), path / "valid.loss.ave.pth")
    return path


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Path:
    return _exp(tmp_path_factory.mktemp("exp") / "a", 0)


@pytest.fixture(scope="module")
def noisy() -> np.ndarray:
    s, _ = speech_like(3, seconds=6.0, sr=SR)
    n = noise("babble", 4, seconds=6.0, sr=SR)
    return (s + 0.5 * n * np.std(s) / np.std(n)).astype(np.float32)


def test_onnxruntime_backend_matches_torch_through_the_chunking(exp, noisy):
    torch.set_num_threads(1)
    ref = Enhancer.from_pretrained(exp, segment_seconds=2.5, overlap_seconds=0.5)   # 6 s: several chunks
    ort = Enhancer.from_pretrained(exp, segment_seconds=2.5, overlap_seconds=0.5, backend="onnxruntime")
    y_ref, v_ref = ref.enhance(noisy, SR, limit=False)
    y, v = ort.enhance(noisy, SR, limit=False)
    assert y.shape == y_ref.shape == noisy.shape and v.shape == v_ref.shape
    assert si_sdr(y_ref, y) >= 40.0
    assert np.max(np.abs(v - v_ref)) < 1e-4
    # stereo in one batch, at another rate: the same as torch too
    st = np.stack([noisy, noisy[::-1].copy()], axis=1)[: 4 * SR]
    assert si_sdr(ref.enhance(st, SR)[0][:, 1], ort.enhance(st, SR)[0][:, 1]) >= 40.0


def test_int8_backend_is_quantised_and_close(exp, noisy):
    torch.set_num_threads(1)
    ref = Enhancer.from_pretrained(exp)
    q = Enhancer.from_pretrained(exp, backend="torch-int8")
    linears = [m for m in q.runner.model.bottleneck.modules() if type(m).__name__ == "Linear"]   # 2 blocks x 7
    assert len(linears) == 14 and all(".quantized.dynamic." in type(m).__module__ for m in linears)
    assert type(q.model.bottleneck[0].time.ff1.net[1]) is torch.nn.Linear     # the fp32 model is left alone
    y_ref, v_ref = ref.enhance(noisy, SR, limit=False)
    y, v = q.enhance(noisy, SR, limit=False)
    assert not np.array_equal(y, y_ref)
    assert si_sdr(y_ref, y) >= 20.0 and np.max(np.abs(v - v_ref)) < 0.05


def test_bf16_backend_is_autocast_and_close_or_refused(exp, noisy, monkeypatch):
    from csmvanet.infer import backends as runners
    from csmvanet.base.errors import EnhanceError

    torch.set_num_threads(1)
    if runners.cpu_has_bf16():
        ref = Enhancer.from_pretrained(exp)
        b = Enhancer.from_pretrained(exp, backend="torch-bf16")
        y_ref, v_ref = ref.enhance(noisy, SR, limit=False)
        y, v = b.enhance(noisy, SR, limit=False)
        assert y.dtype == np.float32 and not np.array_equal(y, y_ref)        # really ran in bf16
        assert si_sdr(y_ref, y) >= 20.0 and np.max(np.abs(v - v_ref)) < 0.05
    monkeypatch.setattr(runners, "cpu_has_bf16", lambda: False)
    with pytest.raises(EnhanceError, match="torch-bf16 needs a CPU with native bfloat16"):
        Enhancer.from_pretrained(exp, backend="torch-bf16")


def test_export_cli_and_enhance_with_the_file(exp, noisy, tmp_path):
    onnx_file = tmp_path / "m.onnx"
    p = subprocess.run([PY, "-m", "csmvanet.bin.export", "--model", str(exp), "--out", str(onnx_file)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert onnx_file.stat().st_size > 10000 and '"vad_logits"' in p.stdout
    assert [f.name for f in tmp_path.iterdir()] == ["m.onnx"]          # no temporary file left
    import onnx

    graph = onnx.load(str(onnx_file)).graph
    assert graph.input[0].type.tensor_type.shape.dim[2].dim_param == "frames"     # dynamic time axis
    assert [o.name for o in graph.output] == ["ri", "vad_logits"]
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "x.wav", noisy, SR)
    outs = {}
    for backend, extra in (("torch", []), ("onnxruntime", ["--onnx", str(onnx_file)])):
        out = tmp_path / backend
        p = subprocess.run([PY, "-m", "csmvanet.bin.enhance", "--model", str(exp), str(src), "--output_dir", str(out),
                            "--backend", backend, *extra, "--output_subtype", "FLOAT", "--num_threads", "1",
                            "--no_progress", "--vad_dir", str(out / "vad")], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        outs[backend] = sf.read(out / "x.wav")[0]
        assert (out / "vad" / "segments").read_text() == (tmp_path / "torch" / "vad" / "segments").read_text()
    assert si_sdr(outs["torch"], outs["onnxruntime"]) >= 40.0


def test_onnx_file_of_other_weights_or_not_onnx_is_refused(exp, tmp_path):
    other = _exp(tmp_path / "b", 1)
    wrong = tmp_path / "other.onnx"
    subprocess.run([PY, "-m", "csmvanet.bin.export", "--model", str(other), "--out", str(wrong)], check=True,
                   capture_output=True)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    for f, hint in ((wrong, "was not exported from these weights"), (junk, "not an ONNX model"),
                    (tmp_path / "missing.onnx", "no such ONNX file")):
        with pytest.raises(ModelFileError, match=hint):
            Enhancer.from_pretrained(exp, backend="onnxruntime", onnx_path=f)
        p = subprocess.run([PY, "-m", "csmvanet.bin.enhance", "--model", str(exp), str(tmp_path), "--output_dir",
                            str(tmp_path / "o"), "--backend", "onnxruntime", "--onnx", str(f)],
                           capture_output=True, text=True)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert p.stderr.strip().splitlines()[-1].startswith(f"csmvanet-enhance: error: {f}: ")
    p = subprocess.run([PY, "-m", "csmvanet.bin.export", "--model", str(exp), "--out", str(tmp_path / "x.pth")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "must end in .onnx" in p.stderr and "Traceback" not in p.stderr


def test_onnx_file_of_another_stft_size_is_refused_in_one_line(exp, tmp_path):
    from csmvanet.experiment.onnx_export import export_model

    other = tmp_path / "stft512"
    other.mkdir()
    cfg = dict(CFG, stft={"n_fft": 512, "win_length": 512, "hop_length": 128})
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    save_checkpoint(build_model(cfg).state_dict(), other / "valid.loss.ave.pth")
    f = tmp_path / "stft512.onnx"
    export_model(other, f)
    want = (f"{f}: does not fit the model (its input has 257 frequency bins, the model's STFT gives 201: "
            "exported from a model with another STFT size)")
    with pytest.raises(ModelFileError) as e:
        Enhancer.from_pretrained(exp, backend="onnxruntime", onnx_path=f)
    assert str(e.value) == want
    p = subprocess.run([PY, "-m", "csmvanet.bin.enhance", "--model", str(exp), str(tmp_path), "--output_dir",
                        str(tmp_path / "o"), "--backend", "onnxruntime", "--onnx", str(f)], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip() == f"csmvanet-enhance: error: {want}"


def test_a_probe_that_the_runner_cannot_run_is_a_does_not_fit_error(exp):
    from csmvanet.experiment.model_files import load_model_files, model_with_weights
    from csmvanet.infer.backends import check_matches

    config, state, _ = load_model_files(exp, None)
    model = model_with_weights(config, state, str(exp)).eval()

    def runner(feats):
        raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions\n index: 1 Got: 3")

    with pytest.raises(ModelFileError, match=r"^x.onnx: does not fit the model \(the probe input fails: "
                                             r"\[ONNXRuntimeError\] : 2 : INVALID_ARGUMENT : Got invalid dimensions "
                                             r"index: 1 Got: 3\)$"):
        check_matches(runner, model, "x.onnx")


@pytest.mark.parametrize("opset", ["9", "13", "21", "99", "-1", "0"])
def test_export_refuses_an_opset_outside_the_supported_range(exp, tmp_path, capsys, opset):
    from csmvanet.bin.export import main

    assert main(["--model", str(exp), "--out", str(tmp_path / "m.onnx"), "--opset", opset]) == 2
    err = capsys.readouterr().err
    assert err == (f"csmvanet-export: error: --opset {opset} is not supported: use 14 to 20 (default 17; the "
                   "network's attention needs 14, torch's TorchScript exporter stops at 20)\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("opset", [14, 20])
def test_export_at_the_opset_boundaries_runs_and_matches_torch(exp, tmp_path, opset):
    import onnx

    from csmvanet.experiment.onnx_export import export_model

    f = tmp_path / f"m{opset}.onnx"
    assert export_model(exp, f, opset=opset)["opset"] == opset
    assert onnx.load(str(f)).opset_import[0].version == opset
    Enhancer.from_pretrained(exp, backend="onnxruntime", onnx_path=f)      # probed against the weights


def test_export_out_naming_a_folder_names_it_not_a_temp_file(exp, tmp_path, capsys):
    from csmvanet.bin.export import main

    d = tmp_path / "d.onnx"
    d.mkdir()
    assert main(["--model", str(exp), "--out", str(d)]) == 1
    assert capsys.readouterr().err == (f"csmvanet-export: error: {d}: is a folder; give the ONNX file's name "
                                       f"(e.g. {d / 'model.onnx'})\n")
    assert [f.name for f in tmp_path.iterdir()] == ["d.onnx"] and list(d.iterdir()) == []
