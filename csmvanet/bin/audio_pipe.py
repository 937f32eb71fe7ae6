"""Speed or rate change of one audio stream, for `cmd |` entries of wav.scp (what Kaldi's recipes do
with `sox ... speed F` / `sox ... rate R`, without needing sox):

    python -m csmvanet.bin.audio_pipe [--speed F] [--rate R] INPUT > out.wav

INPUT is a file, an ark entry (x.ark:offset) or '-' (a wav on stdin). --speed F plays the audio F
times faster (tempo and pitch, as sox's speed): round(n / F) samples at the same rate. --rate R
resamples to R Hz (soxr, very high quality). The result is written to stdout as 16-bit wav (float
samples beyond the 16-bit range are clipped). A bad input or option is one line on stderr, exit 1.
"""
from __future__ import annotations

import argparse
import io
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="audio_pipe", description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="audio file, x.ark:offset, or - for a wav on stdin")
    p.add_argument("--speed", type=float, default=1.0, help="speed factor (0.9 = slower and longer)")
    p.add_argument("--rate", type=int, default=None, help="output sample rate (Hz)")
    a = p.parse_args(argv)
    if not a.speed > 0 or (a.rate is not None and a.rate <= 0):
        print("audio_pipe: --speed and --rate must be positive", file=sys.stderr)
        return 1
    import numpy as np
    import soundfile as sf

    from csmvanet.audio.io import AudioError, read_audio, resample

    try:
        if a.input == "-":
            wave, sr = sf.read(io.BytesIO(sys.stdin.buffer.read()), dtype="float32", always_2d=True)
        else:
            wave, sr = read_audio(a.input, always_2d=True)
    except (AudioError, sf.LibsndfileError, RuntimeError) as e:
        print(f"audio_pipe: {a.input}: cannot read audio ({e})", file=sys.stderr)
        return 1
    if a.speed != 1.0:
        n_out = int(round(wave.shape[0] / a.speed))
        # read the samples as if recorded at sr * F and bring them back to sr: F times faster
        wave = resample(wave, int(round(sr * a.speed * 1000)), sr * 1000)
        wave = np.pad(wave[:n_out], ((0, max(0, n_out - wave.shape[0])), (0, 0)))
    out_sr = a.rate or sr
    if out_sr != sr:
        wave = resample(wave, sr, out_sr)
    buf = io.BytesIO()
    sf.write(buf, np.clip(wave, -1.0, 32767 / 32768), out_sr, subtype="PCM_16", format="WAV")
    sys.stdout.buffer.write(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
