#!/usr/bin/env bash
# Stage 5 (last part) of the recipes that choose their inference settings on validation: append each
# test set's vad_floor comparison (steps/tune_inference.sh: <exp_dir>/floors_<set>.md) to
# <exp_dir>/RESULTS.md, then pack --checkpoint with its settings and scores into
# <exp_dir>/packed/model.pth (csmvanet-pack; its summary in <exp_dir>/packed.log).
#
#   steps/pack_model.sh [--checkpoint NAME] [--valid_set SET] <exp_dir> [<test_set> ...]
set -euo pipefail

checkpoint=valid.loss.ave.pth
valid_set=valid                 # named in the comparison's heading (the settings were chosen on it)
help_message="Usage: $0 [--checkpoint NAME] [--valid_set SET] <exp_dir> [<test_set>...]
  e.g. $0 exp/csmvanet_train test"

. utils/parse_options.sh

if [ $# -lt 1 ]; then
  echo "$help_message" >&2
  exit 1
fi
exp=$1
shift

for x in "$@"; do
  [ -f "$exp/floors_$x.md" ] || continue
  { echo; echo "## vad_floor on $x: 1 = stage 1 alone, 0 = the paper's stage 2, and the floor chosen on $valid_set (each with input_mix 0 and the chosen one)"
    echo; cat "$exp/floors_$x.md"; } >> "$exp/RESULTS.md"
done
[ -f "$exp/$checkpoint" ] || exit 0
mkdir -p "$exp/packed"
csmvanet-pack --exp_dir "$exp" --checkpoint "$checkpoint" --out "$exp/packed/model.pth" > "$exp/packed.log"
echo "$0: packed $exp/packed/model.pth (settings and scores: $exp/packed.log)"
