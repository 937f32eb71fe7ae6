#!/usr/bin/env bash
# Copies a data dir, as Kaldi's copy_data_dir.sh, renaming ids:
#
#   utils/copy_data_dir.sh [--utt-prefix P] [--utt-suffix S] [--spk-prefix P] [--spk-suffix S] src dest
#
# Utterance ids become <utt-prefix><id><utt-suffix> in every per-utterance file (segments included);
# speaker ids <spk-prefix><id><spk-suffix> in utt2spk, spk2utt and speaker files. Recording ids do not
# change (wav.scp with segments is copied as it is). With an utterance prefix or suffix and no
# utt2uniq, utt2uniq (new id -> old id) is written, as Kaldi does. src and dest must differ.
# The logic is in the package: python -m csmvanet.bin.datadir_utils copy (see its --help).
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
python=${CSMVANET_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/tools/venv/bin/python" ]; then python=$root/tools/venv/bin/python; else python=python3; fi
fi
exec "$python" -m csmvanet.bin.datadir_utils copy "$@"
