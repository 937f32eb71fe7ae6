"""Deterministic speech-like signals and noises (pure numpy), for the embedded mini corpus and tests.

Nothing here is real speech; it is audio with the properties that matter to a speech enhancer and a
VAD: harmonic voiced sounds with a moving pitch and moving formants, noisy consonants, syllable
rhythm, and real pauses whose positions are known exactly.

Speech (:func:`speech_like`)
    An utterance alternates *pauses* (0.25-0.9 s of silence, only the optional tiny noise floor) and
    *phrases* (3-12 syllables). A syllable is an optional onset consonant (a fricative: 50-120 ms of
    noise through a wide high resonance at 3.5-6.5 kHz; or a plosive: a 15-50 ms closure of silence
    and a 8-20 ms burst), a voiced nucleus (70-220 ms, scaled by the speaker's rate) with a
    raised-cosine attack and release and a random stress level (0 to -8 dB), and sometimes a
    fricative coda; inside a phrase a short hesitation (30-60 ms silence) may separate words.

    The voiced source is a band-limited harmonic series (amplitudes 1/h, harmonics below 0.45 fs)
    whose f0 follows a declining contour inside the speaker's range with slow random wobble and a
    bump on stressed syllables, plus a little aspiration noise. It is filtered by a cascade of four
    2-pole resonators (Klatt-style, unit DC gain) whose centre frequencies move between vowel
    targets (a small table of F1-F3 values scaled by the speaker's vocal-tract factor) by linear
    interpolation between syllable centres, updated every 32 samples (:func:`resonator`).

    The utterance is scaled so that its active part has the speaker's RMS level (default about
    -26 dBFS); a white noise floor (default -80 dBFS RMS) is then added everywhere. The returned
    activity is True from the first to the last non-zero sample of each phrase (so stop closures and
    hesitations inside a phrase count as speech, pauses between phrases do not).

Noise (:func:`noise`), kinds in :data:`NOISE_KINDS`
    ``white``; ``pink`` (1/f power); ``brown`` (1/f^2 above 20 Hz); ``babble`` (4-7 other
    speech_like talkers summed, with shorter pauses); ``hum`` (50 or 60 Hz mains with decaying
    harmonics, slight level wobble and a weak noise bed); ``car`` (low-pass rumble below about
    200 Hz plus a slowly varying engine harmonic series); ``clatter`` (impulsive: Poisson-timed
    decaying ringing bursts at 1.5-6 kHz over a quiet pink bed). Every noise is scaled to an RMS of
    -26 dBFS.

Everything is a pure function of the seed (``rng_or_seed``: an int or a numpy Generator), so the
same seed gives the same samples on every machine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_KINDS = ("white", "pink", "brown", "babble", "hum", "car", "clatter")

# Vowel formant targets (F1, F2, F3) in Hz for a vocal-tract factor of 1.0 (adult male).
_VOWELS = np.array([
    [270, 2290, 3010],  # i
    [530, 1840, 2480],  # e
    [660, 1720, 2410],  # ae
    [730, 1090, 2440],  # a
    [570, 840, 2410],   # o
    [300, 870, 2240],   # u
    [500, 1500, 2500],  # schwa
], dtype=np.float64)
_BANDWIDTHS = (80.0, 110.0, 160.0, 250.0)
_F4 = 3500.0
_BLOCK = 32


@dataclass(frozen=True)
class Speaker:
    """Parameters of one synthetic talker."""

    f0_low: float = 90.0        # Hz, bottom of the pitch range
    f0_high: float = 150.0      # Hz, top of the pitch range
    formant_scale: float = 1.0  # vocal-tract factor: about 1.0 male, 1.15-1.2 female
    rate: float = 5.0           # syllables per second (nominal)
    level_db: float = -26.0     # RMS of the active part, dBFS
    breathiness: float = 0.05   # aspiration noise relative to the voiced source


def random_speaker(rng_or_seed=None, sex: str | None = None) -> Speaker:
    """Draw a plausible :class:`Speaker` ('m' or 'f' or random)."""
    rng = np.random.default_rng(rng_or_seed)
    if sex is None:
        sex = "f" if rng.random() < 0.5 else "m"
    if sex == "f":
        lo, scale = rng.uniform(160, 210), rng.uniform(1.1, 1.22)
    elif sex == "m":
        lo, scale = rng.uniform(80, 120), rng.uniform(0.92, 1.05)
    else:
        raise ValueError(f"sex must be 'm', 'f' or None, got {sex!r}")
    return Speaker(f0_low=float(lo), f0_high=float(lo * rng.uniform(1.4, 1.8)), formant_scale=float(scale),
                   rate=float(rng.uniform(4.0, 6.0)), level_db=float(rng.uniform(-30.0, -22.0)),
                   breathiness=float(rng.uniform(0.02, 0.1)))


def resonator(x: np.ndarray, freq, bandwidth, sr: int, block: int = _BLOCK) -> np.ndarray:
    """Filter ``x`` through a 2-pole resonator H(z) = A / ((1 - p z^-1)(1 - p* z^-1)), A = |1 - p|^2.

    ``freq`` and ``bandwidth`` (Hz) are scalars or one value per block of ``block`` samples, so the
    resonance can move. The filter is evaluated as the real part of a complex one-pole recursion
    (partial fractions), computed for a whole block at once with cumulative sums; only the state
    between blocks is carried in a Python loop. Unit gain at DC (Klatt's normalisation).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        return x.copy()
    nb = -(-n // block)
    freq = np.broadcast_to(np.asarray(freq, dtype=np.float64), (nb,))
    bandwidth = np.broadcast_to(np.asarray(bandwidth, dtype=np.float64), (nb,))
    r = np.exp(-np.pi * bandwidth / sr)
    theta = 2.0 * np.pi * np.clip(freq, 1.0, 0.499 * sr) / sr
    p = r * np.exp(1j * theta)                          # [nb]
    gain = 1.0 - 2.0 * r * np.cos(theta) + r * r        # A: unit DC gain
    coef = p / (p - np.conj(p))                          # partial-fraction weight
    xb = np.zeros(nb * block)
    xb[:n] = x
    xb = xb.reshape(nb, block)
    k = np.arange(block)
    pk = p[:, None] ** k[None, :]                        # p^k, |p^-k| stays moderate for block 32
    z = pk * np.cumsum(xb / pk, axis=1)                  # zero-state response of each block
    pb = p ** block
    state = np.empty(nb, dtype=np.complex128)            # y at the last sample of each block
    s = 0j
    for b in range(nb):
        s = z[b, -1] + pb[b] * s
        state[b] = s
    prev = np.concatenate([[0j], state[:-1]])
    y = z + (pk * p[:, None]) * prev[:, None]
    out = 2.0 * gain[:, None] * np.real(coef[:, None] * y)
    return out.reshape(-1)[:n]


def _ramp(n: int) -> np.ndarray:
    """Raised-cosine rise of n samples (0 -> 1), excluding the exact zero at the start."""
    if n <= 0:
        return np.ones(0)
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(1, n + 1)) / (n + 1))


def _bump(n: int, attack: int, release: int) -> np.ndarray:
    env = np.ones(n)
    attack, release = min(attack, n // 2), min(release, n - n // 2)
    env[:attack] = _ramp(attack)
    if release:
        env[n - release:] = _ramp(release)[::-1]
    return env


def _phrase(rng: np.random.Generator, spk: Speaker, sr: int) -> np.ndarray:
    """One phrase of syllables, starting and ending with non-zero samples (unnormalised)."""
    ms = sr / 1000.0
    n_syll = int(rng.integers(3, 13))
    rate_scale = 5.0 / spk.rate
    cap = (n_syll + 1) * sr
    voice_env = np.zeros(cap)
    fric_env = np.zeros(cap)
    fric_freq_at = []   # (sample, centre Hz) of each consonant, for the fricative resonance
    vowel_at = []       # (centre sample, vowel index)
    stress_at = []      # (centre sample, stressed)
    pos = 0
    for i in range(n_syll):
        kind = rng.choice(3, p=[0.45, 0.33, 0.22])  # none, fricative, plosive
        if kind == 1:
            d = int(rng.uniform(50, 120) * ms)
            fric_env[pos:pos + d] += _bump(d, int(10 * ms), int(15 * ms)) * rng.uniform(0.5, 1.0)
            fric_freq_at.append((pos + d // 2, rng.uniform(3500, 6500)))
            pos += d - int(rng.uniform(0, 15) * ms)
        elif kind == 2:
            if i > 0:
                pos += int(rng.uniform(15, 50) * ms)  # closure: silence inside the phrase
            d = int(rng.uniform(8, 20) * ms)
            fric_env[pos:pos + d] += _bump(d, int(2 * ms), int(6 * ms)) * rng.uniform(0.6, 1.0)
            fric_freq_at.append((pos + d // 2, rng.uniform(1500, 4500)))
            pos += d
        d = int(rng.uniform(70, 220) * rate_scale * ms)
        stressed = rng.random() < 0.35
        amp = 1.0 if stressed else 10 ** (-rng.uniform(2, 8) / 20)
        voice_env[pos:pos + d] = np.maximum(voice_env[pos:pos + d],
                                            _bump(d, int(rng.uniform(15, 25) * ms),
                                                  int(rng.uniform(25, 50) * ms)) * amp)
        vowel_at.append((pos + d // 2, int(rng.integers(len(_VOWELS)))))
        stress_at.append((pos + d // 2, stressed))
        pos += d
        if rng.random() < 0.15:
            d = int(rng.uniform(40, 90) * ms)
            fric_env[pos - int(10 * ms):pos - int(10 * ms) + d] += _bump(d, int(10 * ms), int(20 * ms)) * 0.7
            fric_freq_at.append((pos + d // 2, rng.uniform(3500, 6500)))
            pos += d - int(10 * ms)
        if i < n_syll - 1:
            if rng.random() < 0.15:
                pos += int(rng.uniform(30, 60) * ms)   # hesitation between words
            else:
                pos -= int(rng.uniform(5, 25) * ms)    # co-articulation: nuclei run into each other
    n = pos + int(60 * ms)
    voice_env, fric_env = voice_env[:n], fric_env[:n]

    # Pitch contour: declination, slow wobble, bumps on stressed syllables, a little jitter.
    t = np.arange(n) / sr
    dur = max(t[-1], 1e-3)
    f0 = spk.f0_high - (spk.f0_high - spk.f0_low) * (0.2 + 0.7 * t / dur)
    f0 *= 1.0 + 0.04 * np.sin(2 * np.pi * rng.uniform(1, 3) * t + rng.uniform(0, 2 * np.pi))
    for c, stressed in stress_at:
        if stressed:
            f0 *= 1.0 + 0.12 * np.exp(-0.5 * ((np.arange(n) - c) / (0.06 * sr)) ** 2)
    f0 *= 1.0 + 0.005 * rng.standard_normal(n)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    n_harm = int(0.45 * sr / (spk.f0_high * 1.15))
    src = np.zeros(n)
    for h in range(1, n_harm + 1):
        src += np.sin(h * phase) / h
    src = src / np.sqrt(0.5 * np.sum(1.0 / np.arange(1, n_harm + 1) ** 2))
    src += spk.breathiness * rng.standard_normal(n)
    voiced = src * voice_env

    # Formant tracks: linear interpolation between vowel targets, one value per block.
    nb = -(-n // _BLOCK)
    centres = (np.arange(nb) + 0.5) * _BLOCK
    cpos = np.array([c for c, _ in vowel_at], dtype=np.float64)
    targets = _VOWELS[[v for _, v in vowel_at]] * spk.formant_scale
    targets *= rng.uniform(0.93, 1.07, size=targets.shape)
    for j in range(3):
        track = np.interp(centres, cpos, targets[:, j])
        voiced = resonator(voiced, track, _BANDWIDTHS[j], sr)
    voiced = resonator(voiced, _F4 * spk.formant_scale, _BANDWIDTHS[3], sr)

    fric = np.zeros(n)
    if fric_freq_at:
        fpos = np.array([c for c, _ in fric_freq_at], dtype=np.float64)
        ffreq = np.array([f for _, f in fric_freq_at])
        track = np.interp(centres, fpos, ffreq)
        hp = np.diff(rng.standard_normal(n + 1))  # tilt the noise upwards before the resonance
        fric = resonator(hp, track, 1800.0, sr) * fric_env
    v_rms = np.sqrt(np.mean(voiced[voice_env > 0] ** 2)) if np.any(voice_env > 0) else 1.0
    f_rms = np.sqrt(np.mean(fric[fric_env > 0] ** 2)) if np.any(fric_env > 0) else 1.0
    sig = voiced / v_rms + fric / max(f_rms, 1e-12) * 10 ** (-rng.uniform(8, 16) / 20)
    nz = np.flatnonzero((voice_env > 0) | (fric_env > 0))
    return sig[nz[0]:nz[-1] + 1]


def speech_like(rng_or_seed=None, seconds: float = 3.0, sr: int = 16000, speaker: Speaker | None = None,
                *, floor_db: float | None = -80.0, pause_range: tuple[float, float] = (0.25, 0.9),
                lead_range: tuple[float, float] = (0.1, 0.5)) -> tuple[np.ndarray, np.ndarray]:
    """A speech-like utterance of ``seconds`` -> (float32 wave [N], bool activity [N]).

    ``speaker`` defaults to :func:`random_speaker` drawn from the same generator. ``floor_db``: RMS
    of the white noise floor added everywhere (dBFS), None for exact silence in pauses.
    ``pause_range``: pause length between phrases (s); ``lead_range``: silence before the first phrase.
    """
    rng = np.random.default_rng(rng_or_seed)
    if speaker is None:
        speaker = random_speaker(rng)
    n = int(round(seconds * sr))
    wave = np.zeros(n)
    active = np.zeros(n, dtype=bool)
    pos = int(rng.uniform(*lead_range) * sr)
    fade = int(0.02 * sr)
    while n - pos >= int(0.4 * sr):
        ph = _phrase(rng, speaker, sr)
        room = n - pos
        if len(ph) > room:  # cut the last phrase at the end of the utterance with a short fade
            ph = ph[:room].copy()
            ph[-fade:] *= _ramp(fade)[::-1]
        wave[pos:pos + len(ph)] = ph
        active[pos:pos + len(ph)] = True
        pos += len(ph) + int(rng.uniform(*pause_range) * sr)
    if active.any():
        rms = np.sqrt(np.mean(wave[active] ** 2))
        wave *= 10 ** (speaker.level_db / 20) / rms
    if floor_db is not None:
        wave += 10 ** (floor_db / 20) * rng.standard_normal(n)
    peak = np.max(np.abs(wave)) if n else 0.0
    if peak > 0.95:
        wave *= 0.95 / peak
    return wave.astype(np.float32), active


def _shaped(rng: np.random.Generator, n: int, sr: int, power_exp: float, f_lo: float = 0.0,
            f_hi: float | None = None) -> np.ndarray:
    """Gaussian noise with power spectrum ~ f^-power_exp between f_lo and f_hi (FFT shaping)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    gain = np.zeros_like(f)
    ok = f > max(f_lo, sr / max(n, 1))
    gain[ok] = f[ok] ** (-power_exp / 2)
    if f_hi is not None:
        gain /= np.sqrt(1.0 + (f / f_hi) ** 8)
    return np.fft.irfft(spec * gain, n)


def noise(kind: str, rng_or_seed=None, seconds: float = 10.0, sr: int = 16000) -> np.ndarray:
    """A noise of the given kind (see :data:`NOISE_KINDS`) -> float32 [N] at -26 dBFS RMS."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
    rng = np.random.default_rng(rng_or_seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind == "pink":
        x = _shaped(rng, n, sr, 1.0)
    elif kind == "brown":
        x = _shaped(rng, n, sr, 2.0, f_lo=20.0)
    elif kind == "babble":
        x = np.zeros(n)
        for _ in range(int(rng.integers(4, 8))):
            w, _ = speech_like(rng, seconds, sr, floor_db=None, pause_range=(0.1, 0.4), lead_range=(0.0, 0.3))
            x += w / max(np.sqrt(np.mean(w.astype(np.float64) ** 2)), 1e-12)
    elif kind == "hum":
        f_mains = 50.0 if rng.random() < 0.5 else 60.0
        x = np.zeros(n)
        for h in range(1, 9):
            amp = rng.uniform(0.3, 1.0) / h ** rng.uniform(0.5, 1.2)
            x += amp * np.sin(2 * np.pi * h * f_mains * t + rng.uniform(0, 2 * np.pi))
        x *= 1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t)
        x /= np.sqrt(np.mean(x ** 2)) + 1e-12
        bed = _shaped(rng, n, sr, 1.0)
        x += 0.05 * bed / (np.sqrt(np.mean(bed ** 2)) + 1e-12)
    elif kind == "car":
        rumble = _shaped(rng, n, sr, 1.0, f_lo=15.0, f_hi=rng.uniform(150, 250))
        rumble /= np.sqrt(np.mean(rumble ** 2)) + 1e-12
        f_eng = rng.uniform(25, 45) * (1.0 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t))
        ph = 2 * np.pi * np.cumsum(f_eng) / sr
        engine = sum(np.sin(h * ph + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 7))
        engine /= np.sqrt(np.mean(engine ** 2)) + 1e-12
        x = rumble + 0.5 * engine
    else:  # clatter
        x = 0.03 * _shaped(rng, n, sr, 1.0)
        x /= max(np.sqrt(np.mean(x ** 2)) / 0.03, 1e-12)
        count = rng.poisson(rng.uniform(3, 10) * seconds)
        for _ in range(count):
            start = int(rng.integers(0, max(n, 1)))
            length = min(int(rng.uniform(0.03, 0.25) * sr), n - start)
            if length <= 0:
                continue
            tt = np.arange(length) / sr
            decay = np.exp(-tt / rng.uniform(0.01, 0.06))
            ring = sum(np.sin(2 * np.pi * rng.uniform(1500, 6000) * tt + rng.uniform(0, 2 * np.pi))
                       for _ in range(3))
            x[start:start + length] += rng.uniform(0.3, 1.5) * decay * (ring + 0.5 * rng.standard_normal(length))
    x = x - np.mean(x)
    x *= 10 ** (-26 / 20) / (np.sqrt(np.mean(x ** 2)) + 1e-20)
    peak = np.max(np.abs(x)) if n else 0.0
    if peak > 0.99:
        x *= 0.99 / peak
    return x.astype(np.float32)
