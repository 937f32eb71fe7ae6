#!/usr/bin/env bash
# Repairs a data dir in place (logic: csmvanet.datadir.fix_data_dir): sorts every per-utterance file
# (*.scp, utt2*, text) in C locale, drops duplicate keys (first line wins) and lines without value,
# keeps only the utterances present in every per-utterance file, rebuilds spk2utt from utt2spk.
# The originals go to data/x/.backup/ first. Prints how many utterances were removed and why.
#
#   utils/fix_data_dir.sh data/x
set -euo pipefail

usage="Usage: $0 <data-dir>"
case "${1:-}" in -h|--help) echo "$usage"; exit 0 ;; -*) echo "$0: unknown option $1" >&2; exit 1 ;; esac
[ $# -eq 1 ] || { echo "$usage" >&2; exit 1; }

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
python=${CSMVANET_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/tools/venv/bin/python" ]; then python=$root/tools/venv/bin/python; else python=python3; fi
fi

exec "$python" - "$1" <<'PY'
import sys

from csmvanet.datadir import DataDirError, fix_data_dir

data = sys.argv[1]
try:
    res = fix_data_dir(data)
except (DataDirError, OSError) as e:
    print(f"fix_data_dir: {e}", file=sys.stderr)
    sys.exit(1)
for r in res.reasons:
    print(f"fix_data_dir: {r}")
print(f"fix_data_dir: {data}: kept {res.kept} of {res.before} utterances, removed {res.removed}"
      f" (originals in {res.backup})")
PY
