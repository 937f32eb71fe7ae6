#!/usr/bin/env bash
# Makes a data dir read its audio at another rate, as Kaldi's utils/data/resample_data_dir.sh:
#
#   utils/data/resample_data_dir.sh <frequency> <datadir>
#
# utt2dur is written first if missing; then every audio list entry (wav.scp, spkN.scp, noiseN.scp;
# Kaldi: wav.scp only) becomes '<python> -m csmvanet.bin.audio_pipe --rate <frequency> <entry> |'
# (soxr; no sox needed). Files holding sample or frame counts (utt2num_samples, vad_labels.scp,
# feats.scp, cmvn.scp, utt2num_frames) are moved to <datadir>/.backup/, as Kaldi moves feats.scp.
# The logic is in the package: python -m csmvanet.bin.datadir_utils resample (see its --help).
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
python=${CSMVANET_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/tools/venv/bin/python" ]; then python=$root/tools/venv/bin/python; else python=python3; fi
fi
exec "$python" -m csmvanet.bin.datadir_utils resample "$@"
