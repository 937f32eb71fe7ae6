#!/usr/bin/env bash
# Combines data dirs, as Kaldi's combine_data.sh:
#
#   utils/combine_data.sh [--extra-files "f1 f2"] [--skip-fix true|false] <dest> <src1> <src2> ...
#
# A file is combined when every source has it (the others are named and left out); segments and
# utt2uniq are made where missing (utt utt 0 <duration> / utt utt) when some source has them; the
# duration comes from utt2dur, else from the audio header, as Kaldi's get_utt2dur.sh finds it. The same
# utterance id in two sources is an error (Kaldi silently keeps one): nothing is written; rename with
# utils/copy_data_dir.sh --utt-prefix first. A recording or speaker in two sources must have the same
# value. --skip-fix is accepted (the result is consistent by construction).
# The logic is in the package: python -m csmvanet.bin.datadir_utils combine (see its --help).
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
python=${CSMVANET_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/tools/venv/bin/python" ]; then python=$root/tools/venv/bin/python; else python=python3; fi
fi
exec "$python" -m csmvanet.bin.datadir_utils combine "$@"
