"""What enhancement writes, checked against a model whose output is known.

- Segments and RTTM: a stand-in model whose VAD is 1 exactly where the input is non-zero; the files
  must hold the known speech times (seconds of the input, whatever its rate), within one hop.
- wav.scp values that are pipes (``cmd |``) and ark offsets (``file.ark:offset``) enhance like files.
- The overlap-add cross-fade is the raised cosine the module documents (a stand-in model that
  outputs the chunk's index makes the weights visible).
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from csmvanet.audio.stft import STFTConfig
from csmvanet.infer.batch import collect_inputs, enhance_batch
from csmvanet.infer.enhancer import Enhancer

SR = 16000
HOP = 100
SPEECH = [(0.5, 1.2), (8.3, 9.0)]     # seconds; the second lies in a later chunk
SECONDS = 10.0


class StandIn(torch.nn.Module):
    """The model's inference interface (analysis -> network -> synthesis, what the Enhancer calls)
    with the waveform itself as the features; subclasses define ``outputs(x) -> (wave, vad or None)``."""

    def __init__(self):
        super().__init__()
        self.stft_cfg = STFTConfig(sample_rate=SR, hop_length=HOP)

    def analysis(self, x):
        return x, None

    def network(self, x):
        return self.outputs(x)

    def synthesis(self, wave, vad, scale, n):
        return {"wave": wave[:, :n], "vad": vad}


class GateNet(StandIn):
    """wave = input; vad = 1 where the input sample at the frame centre is non-zero, else 0."""

    def outputs(self, x):
        n = x.shape[1]
        centres = (torch.arange(n // HOP + 1) * HOP).clamp(max=n - 1)
        return x.clone(), (x[:, centres].abs() > 0.05).float()


def gated(sr: int) -> np.ndarray:
    x = np.zeros(int(SECONDS * sr), np.float32)
    for a, b in SPEECH:
        x[int(a * sr):int(b * sr)] = 0.3
    return x


def test_segments_and_rttm_times_match_the_known_vad(tmp_path):
    import kaldiio

    x16, x8 = gated(16000), gated(8000)
    sf.write(tmp_path / "a.wav", x16, 16000, subtype="FLOAT")
    sf.write(tmp_path / "b8k.wav", x8, 8000, subtype="FLOAT")
    kaldiio.save_ark(str(tmp_path / "c.ark"), {"c": (16000, (x16 * 32767).astype(np.int16))},
                     scp=str(tmp_path / "c_ark.scp"))
    ark_value = (tmp_path / "c_ark.scp").read_text().split(maxsplit=1)[1].strip()
    assert ark_value.startswith(str(tmp_path / "c.ark:"))
    (tmp_path / "wav.scp").write_text(f"a {tmp_path / 'a.wav'}\n"
                                      f"b cat {tmp_path / 'b8k.wav'} |\n"
                                      f"c {ark_value}\n")
    items = collect_inputs([], wav_scp=str(tmp_path / "wav.scp"))
    enh = Enhancer(GateNet(), {}, segment_seconds=4.0, overlap_seconds=1.0)
    rep = enhance_batch(enh, items, tmp_path / "out", vad_dir=tmp_path / "vad", progress=False,
                        subtype="FLOAT", min_speech=0.1, min_silence=0.1)
    assert not rep.failed and [k for k, _ in rep.done] == ["a", "b", "c"]

    # the outputs are the inputs (identity model): pipes and ark entries were read right
    for key, ref, sr in (("a", x16, 16000), ("b", x8, 8000), ("c", x16, 16000)):
        y, sr_out = sf.read(str(tmp_path / "out" / f"{key}.wav"), dtype="float32")
        assert sr_out == sr and y.shape == ref.shape
        inner = np.ones(len(ref), bool)
        for a, b in SPEECH:      # away from the steps, which resampling rings around
            inner[int(a * sr) - sr // 100:int(a * sr) + sr // 100] = False
            inner[int(b * sr) - sr // 100:int(b * sr) + sr // 100] = False
        np.testing.assert_allclose(y[inner], ref[inner], atol=2e-3)

    tol = HOP / SR + 1e-9    # a frame stands for one hop around its centre
    lines = (tmp_path / "vad" / "segments").read_text().splitlines()
    by_utt: dict[str, list] = {}
    for line in lines:
        seg_id, utt, start, end = line.split()
        by_utt.setdefault(utt, []).append((float(start), float(end)))
        assert seg_id == f"{utt}-{round(float(start) * 100):07d}-{round(float(end) * 100):07d}"
    assert sorted(by_utt) == ["a", "b", "c"]
    for utt, segs in by_utt.items():
        assert len(segs) == len(SPEECH), (utt, segs)
        for (s, e), (a, b) in zip(segs, SPEECH):
            assert abs(s - a) <= tol + 0.005 and abs(e - b) <= tol + 0.005, (utt, segs)   # 2 decimals

    rttm: dict[str, list] = {}
    for line in (tmp_path / "vad" / "vad.rttm").read_text().splitlines():
        f = line.split()
        assert f[0] == "SPEAKER" and f[2] == "1" and f[7] == "speech"
        rttm.setdefault(f[1], []).append((float(f[3]), float(f[3]) + float(f[4])))
    for utt, segs in rttm.items():
        for (s, e), (a, b) in zip(segs, SPEECH):
            assert abs(s - a) <= tol + 0.0005 and abs(e - b) <= tol + 0.0015, (utt, segs)
    assert sorted(rttm) == ["a", "b", "c"] and all(len(v) == len(SPEECH) for v in rttm.values())

    # frame probabilities: one per model frame (hop 100 at 16 kHz) of the whole input
    probs = kaldiio.load_scp(str(tmp_path / "vad" / "vad_prob.scp"))
    for key in ("a", "b", "c"):
        assert probs[key].shape == (int(SECONDS * SR) // HOP + 1,)
        t = np.arange(len(probs[key])) * HOP / SR
        on = np.zeros(len(t), bool)
        for a, b in SPEECH:
            on |= (t >= a + 0.002) & (t < b - 0.002)
        off = np.ones(len(t), bool)
        for a, b in SPEECH:
            off &= (t < a - 0.002) | (t >= b + 0.002)
        assert (probs[key][on] > 0.5).all() and (probs[key][off] < 0.5).all(), key


def test_multichannel_vad_is_the_loudest_channel_and_an_input_is_never_overwritten(tmp_path):
    """channels="each": one VAD track per file, speech where ANY channel has speech (the frame-wise
    maximum). An output path equal to its input is refused by name and the batch goes on."""
    import kaldiio

    x = gated(SR)
    st = np.zeros((len(x), 2), np.float32)
    first = int(5 * SR)
    st[:first, 0] = x[:first]                       # speech 1 in channel 0 only
    st[first:, 1] = x[first:]                       # speech 2 in channel 1 only
    (tmp_path / "in").mkdir()
    (tmp_path / "other").mkdir()
    sf.write(tmp_path / "other" / "st.wav", st, SR, subtype="FLOAT")
    sf.write(tmp_path / "in" / "a.wav", x, SR, subtype="FLOAT")
    before = (tmp_path / "in" / "a.wav").read_bytes()
    items = collect_inputs([str(tmp_path / "in" / "a.wav"), str(tmp_path / "other" / "st.wav")])
    enh = Enhancer(GateNet(), {}, segment_seconds=4.0, overlap_seconds=1.0)
    rep = enhance_batch(enh, items, tmp_path / "in", vad_dir=tmp_path / "vad", progress=False,
                        subtype="FLOAT", report=lambda m: None)
    assert len(rep.failed) == 1 and "a.wav: output would overwrite the input" in rep.failed[0]
    assert (tmp_path / "in" / "a.wav").read_bytes() == before
    assert [k for k, _ in rep.done] == ["st"]
    y, _ = sf.read(str(tmp_path / "in" / "st.wav"), dtype="float32")
    assert y.shape == st.shape
    p = kaldiio.load_scp(str(tmp_path / "vad" / "vad_prob.scp"))["st"]
    t = np.arange(len(p)) * HOP / SR
    for a, b in SPEECH:                              # both speech runs, whichever channel held them
        assert (p[(t >= a + 0.002) & (t < b - 0.002)] > 0.5).all()
    assert len((tmp_path / "vad" / "segments").read_text().splitlines()) == len(SPEECH)


class ChunkIndexNet(StandIn):
    """wave = the index of the chunk (0, 1, 2, ...) everywhere: the output shows the cross-fade weights."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def outputs(self, x):
        out = torch.full_like(x, float(self.calls))
        self.calls += 1
        return out, None


@pytest.mark.parametrize("overlap", [0.5, 1.0])
def test_overlap_add_uses_the_raised_cosine_cross_fade(overlap):
    enh = Enhancer(ChunkIndexNet(), {}, segment_seconds=2.0, overlap_seconds=overlap)
    y, vad = enh.enhance(np.full(6 * SR, 0.1, np.float32), SR, limit=False)
    assert vad is None
    ov = int(overlap * SR)
    step = 2 * SR - ov
    i = np.arange(ov)
    fade = 0.5 - 0.5 * np.cos(np.pi * (i + 0.5) / ov)
    np.testing.assert_allclose(y[:step], 0.0, atol=1e-6)                  # chunk 0 alone
    np.testing.assert_allclose(y[step:step + ov], fade, atol=1e-5)       # chunk 0 -> 1
    np.testing.assert_allclose(y[step + ov:2 * step], 1.0, atol=1e-6)    # chunk 1 alone
    np.testing.assert_allclose(y[2 * step:2 * step + ov], 1.0 + fade, atol=1e-5)
