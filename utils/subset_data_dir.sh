#!/usr/bin/env bash
# Copies a subset of a data dir, as Kaldi's subset_data_dir.sh:
#
#   utils/subset_data_dir.sh [--first|--last|--per-spk] <srcdir> <num-utt> <destdir>
#   utils/subset_data_dir.sh --utt-list <file> <srcdir> <destdir>
#   utils/subset_data_dir.sh --spk-list <file> <srcdir> <destdir>
#
# Without an option, <num-utt> utterances spread evenly over the sorted list (Kaldi's subset_scp.pl
# rule: deterministic, not random); --first / --last the first or last ones; --per-spk at most
# <num-utt> of each speaker, evenly spaced; --utt-list / --spk-list the utterances / speakers listed
# (first field of each line). Every per-utterance file is carried, segments with the recordings they
# use, speaker files, frame_shift. Asking for more utterances than there are, or a subset with no
# utterance, fails (nothing written). Kaldi's --speakers and --shortest are not supported.
# The logic is in the package: python -m csmvanet.bin.datadir_utils subset (see its --help).
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
python=${CSMVANET_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/tools/venv/bin/python" ]; then python=$root/tools/venv/bin/python; else python=python3; fi
fi
exec "$python" -m csmvanet.bin.datadir_utils subset "$@"
