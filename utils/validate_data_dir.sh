#!/usr/bin/env bash
# Checks a data dir, as Kaldi's validate_data_dir.sh does (and more). Exit 0 with a one-line summary
# if it is valid; else exit 1 after listing each problem on stderr, naming the file and the key.
#
#   utils/validate_data_dir.sh [options] data/x
#
# Options: --fs N (sample rate of every audio entry), --no-audio-check (do not read the audio),
# --check-pipes (run `cmd |` entries), --require "F1 F2" (default "wav.scp utt2spk spk2utt", as
# Kaldi; give another list for lists that are not Kaldi data dirs), --stft-config FILE (training
# config whose stft: section defines the VAD frames); Kaldi's --no-wav (wav.scp not required),
# --no-spk-sort (utt2spk need not be sorted by speaker too), --no-feats, --no-text, --non-print
# (accepted; text is always checked when present, feats are not ours).
#
# The utterances are the keys of segments if present (wav.scp, spkN.scp, noiseN.scp are then keyed
# by recording), else of wav.scp. Checked: at least one utterance; utterance ids follow
# csmvanet/base/keys.py (no '/', no leading '.', no white space or control characters); files sorted
# (C locale), no duplicate keys; the same utterances in every per-utterance file (utt2spk, spk1.scp,
# vad_labels.scp, utt2num_samples, utt2noise, utt2snr, text, ...); every segment's recording in
# wav.scp; spk2utt consistent with utt2spk; audio files exist, are readable and mono, sample rates
# (vs --fs and between wav.scp and spk1.scp), segments inside their recording, noisy and clean lengths
# equal, utt2num_samples equal to the utterance; VAD labels (vad_labels.scp; vad.scp of older dirs, with
# a notice) int32 0/1 with STFTConfig.num_frames(num_samples) frames, and frame_shift matching hop/rate.
# Kaldi's content checks too: a newline at the end of every file; utt2spk one speaker per line, sorted
# by speaker as well; segments end > start (no -1) and every recording used by a segment; spk2gender
# m/f; spk2warp, utt2warp in (0.5, 1.5); cmvn.scp, spk2gender, spk2warp covering every speaker; utt2dur,
# reco2dur one positive number; utt2num_frames a positive integer; reco2file_and_channel '<file> A|B'
# (1: a notice); no '~' path in wav.scp; text without CR, control characters, white space but space/tab.
# Names and values that are not UTF-8 are read and printed as their bytes.
# The logic is in the package: python -m csmvanet.bin.datadir_utils validate (see its --help).
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
python=${CSMVANET_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/tools/venv/bin/python" ]; then python=$root/tools/venv/bin/python; else python=python3; fi
fi
exec "$python" -m csmvanet.bin.datadir_utils validate "$@"
