#!/usr/bin/env bash
# Repairs a data dir in place, as Kaldi's fix_data_dir.sh: sorts every file (C locale), drops
# duplicate keys (first line wins) and lines without value, keeps the utterances present in every
# per-utterance file (and, with segments, whose recording is in wav.scp), whose speaker is in
# spk2gender and cmvn.scp (when present) and whose utt2dur / utt2num_frames is one positive number,
# the recordings that kept segments use and the speakers of kept utterances, rebuilds spk2utt.
# Lines that stay are written back byte for byte (tabs, double spaces, non-UTF-8 bytes kept).
#
#   utils/fix_data_dir.sh [--utt-extra-files "f1 f2"] [--max-drop-fraction 0.5] data/x
#
# --utt-extra-files: more files keyed by utterance (Kaldi/ESPnet); ours (spk1.scp, utt2num_samples,
#   utt2noise, utt2snr, vad_labels.scp, any *.scp or utt2*) are always included. Names that do not
#   exist are ignored, as Kaldi does (ESPnet's enh.sh passes utt2category whether it exists or not).
# --max-drop-fraction F: fail (exit 1, nothing changed) when more than F of the utterances would be
#   removed (default 0.5). A fix that would leave no utterance always fails, nothing changed.
# Unlike Kaldi, an utterance missing from any per-utterance file is removed (Kaldi only filters the
# extra files), utt2spk is optional, and no backup is overwritten: the files that change are copied to
# data/x/.backup/ first, or to data/x/.backup.N/ when .backup holds an earlier one. A dir that needs no
# change is left as it is.
# The logic is in the package: python -m csmvanet.bin.datadir_utils fix (see its --help).
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
python=${CSMVANET_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/tools/venv/bin/python" ]; then python=$root/tools/venv/bin/python; else python=python3; fi
fi
exec "$python" -m csmvanet.bin.datadir_utils fix "$@"
