#!/usr/bin/env bash
# Splits a data dir for a stage run with --nj N, as Kaldi's split_data.sh:
#
#   utils/split_data.sh [--per-utt] data/x N
#
# By default per speaker (every speaker in one part; needs utt2spk), into data/x/split<N>/{1..N};
# with --per-utt per utterance, into data/x/split<N>utt/{1..N}. The parts are those of Kaldi's
# split_scp.pl (contiguous runs of the sorted utterances; per speaker balanced by utterance count).
# Every per-utterance file (spk1.scp, utt2num_samples, utt2noise, utt2snr, vad_labels.scp, text, ...)
# is filtered to the part, segments too, and then wav.scp (by recording) to the recordings the
# part's segments use; speaker files to its speakers; spk2utt is rebuilt; frame_shift copied.
# The split is built under a temporary name and renamed (made afresh each time). More parts than
# speakers (or utterances with --per-utt) is an error. --per-spk (the default) is accepted.
# The logic is in the package: python -m csmvanet.bin.datadir_utils split_data (see its --help).
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
python=${CSMVANET_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/tools/venv/bin/python" ]; then python=$root/tools/venv/bin/python; else python=python3; fi
fi
exec "$python" -m csmvanet.bin.datadir_utils split_data "$@"
