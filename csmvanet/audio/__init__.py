"""Signal floor: audio files and streams, and the STFT features of the network.

Audio I/O and resampling of Kaldi scp entries (:mod:`.io`), the power-compressed STFT (:mod:`.stft`),
torch-free streaming DSP of inference (:mod:`.stream_dsp`: chunk overlap-add, limiter, resampler) and
deterministic synthetic speech-like signals and noises (:mod:`.synthetic`).
"""
