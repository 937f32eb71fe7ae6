#!/usr/bin/env bash
# Speed-perturbed copy of a data dir, as Kaldi's utils/data/perturb_data_dir_speed.sh:
#
#   utils/data/perturb_data_dir_speed.sh [--include-spk-prefix true|false] <factor> <srcdir> <destdir>
#
# Ids become sp<factor>-<id> (utterances, speakers, recordings; with --include-spk-prefix false,
# <id>-sp<factor> for utterances and recordings and speakers unchanged); utt2uniq maps them back;
# segments and utt2dur / reco2dur are divided by the factor (utt2dur is computed first if missing;
# segments of 10 ms or less after the change are dropped), utt2num_samples becomes round(n / factor)
# (without segments); text, utt2lang, utt2snr, utt2noise, utt2category, spk2gender and
# reco2file_and_channel follow their ids. Audio entries become pipes, as in Kaldi, but through our
# own tool instead of sox (no sox needed): '<python> -m csmvanet.bin.audio_pipe --speed F <entry> |'.
# Unlike Kaldi's (wav.scp only), every audio list (wav.scp, spkN.scp, noiseN.scp) is perturbed alike.
# Files that speed changes otherwise (vad_labels.scp, utt2num_frames, cmvn.scp) are left out, named.
# The logic is in the package: python -m csmvanet.bin.datadir_utils perturb_speed (see its --help).
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
python=${CSMVANET_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/tools/venv/bin/python" ]; then python=$root/tools/venv/bin/python; else python=python3; fi
fi
exec "$python" -m csmvanet.bin.datadir_utils perturb_speed "$@"
