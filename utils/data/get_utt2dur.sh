#!/usr/bin/env bash
# Writes <datadir>/utt2dur, as Kaldi's utils/data/get_utt2dur.sh: nothing to do when utt2dur has
# as many lines as utt2spk; else from segments (end - start), else from frame_shift and utt2num_frames
# ((frames + 1.5) * shift), else from the headers of wav.scp's audio (pipes are run).
#
#   utils/data/get_utt2dur.sh [--frame-shift 0.01] [--nj N] [--cmd C] <datadir>
#
# --nj, --cmd and --read-entire-file are accepted (headers are read in one process).
# The logic is in the package: python -m csmvanet.bin.datadir_utils utt2dur (see its --help).
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
python=${CSMVANET_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/tools/venv/bin/python" ]; then python=$root/tools/venv/bin/python; else python=python3; fi
fi
exec "$python" -m csmvanet.bin.datadir_utils utt2dur "$@"
