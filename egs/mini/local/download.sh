#!/usr/bin/env bash
# Stage 0 of egs/mini: there is nothing to download; the embedded synthetic corpus is written to
# <corpus> (local/make_corpus.py: deterministic; a finished corpus made with the same arguments is
# kept as it is).
#
#   local/download.sh [--utts_per_speaker 20] <corpus>
set -euo pipefail

utts_per_speaker=20
help_message="Usage: $0 [--utts_per_speaker 20] <corpus>"
. utils/parse_options.sh
if [ $# -ne 1 ]; then
  echo "$help_message" >&2
  exit 1
fi
python3 "$(dirname "$0")/make_corpus.py" "$1" --utts_per_speaker "$utts_per_speaker"
