"""Data floor: Kaldi-style data dirs and what is made from them.

Key-value lists (:mod:`.datadir`), Kaldi utils on whole dirs (validate, fix, split/subset/combine,
durations, speed perturbation and resampling through pipes), per-utterance audio through ``segments``
(:mod:`.utt_audio`), VAD frame labels and speech segments (:mod:`.vad`), mixture specs and simulation,
ESPnet's training-set perturbation (:mod:`.train_set`) and the training examples (:mod:`.dataset`).
"""
