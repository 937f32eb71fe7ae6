#!/usr/bin/env bash
# Stage 4 (first part) of the recipes that choose their inference settings on validation
# (egs/voiceprompts, egs/crossvoices): csmvanet-tune-inference on the validation set writes
# <exp_dir>/inference.yaml (vad_floor, VAD threshold, input mix, SNR limit) for --checkpoint, then every
# test set compares the vad_floor values of --compare_floors with the chosen one (input mix 0 and the
# chosen one; no SNR limit and the chosen one) into <exp_dir>/floors_<set>.md, one job per set.
#
#   steps/tune_inference.sh [options] <data_root> <exp_dir> <valid_set> [<test_set> ...]
#
# Without <exp_dir>/<checkpoint> (a model from elsewhere) nothing is chosen; without an inference.yaml
# nothing is compared. Logs: <exp_dir>/log/tune_inference.log, <exp_dir>/log/floors_<set>.log.
set -euo pipefail

cmd=utils/run.pl
checkpoint=valid.loss.ave.pth   # the weights whose settings are chosen
tune_args=                      # csmvanet-tune-inference options (grids, --keep_stoi, chunking, ...)
compare_floors="1 0"            # vad_floor values compared with the chosen one on the test sets
help_message="Usage: $0 [--cmd utils/run.pl] [--checkpoint NAME] [--tune_args \"...\"] [--compare_floors \"1 0\"] <data_root> <exp_dir> <valid_set> [<test_set>...]
  e.g. $0 --tune_args \"--floors 0.3,0.5,1 --keep_stoi\" dump exp/csmvanet_train valid test"

. utils/parse_options.sh

if [ $# -lt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
exp=$2
valid=$3
shift 3

setting() { awk -v k="$1:" 'substr($0, 1, length(k)) == k { print $2 }' "$exp/inference.yaml"; }   # top-level keys only (the grid repeats them)

if [ -f "$exp/$checkpoint" ]; then   # a model of this experiment: its settings are chosen here
  # shellcheck disable=SC2086
  $cmd "$exp/log/tune_inference.log" csmvanet-tune-inference --exp_dir "$exp" --checkpoint "$checkpoint" \
    --data_dir "$data/$valid" --no_progress $tune_args
  echo "$0: chosen on $valid: $(grep -E '^(vad_floor|vad_threshold|input_mix|snr_limit|segment_seconds|overlap_seconds):' \
    "$exp/inference.yaml" | tr '\n' ' ')"
fi
[ -f "$exp/inference.yaml" ] || exit 0
floors="${compare_floors// /,},$(setting vad_floor)"
mixes="0,$(setting input_mix)"
limit=$(setting snr_limit)
limits="none,$([ "$limit" = null ] && echo none || echo "$limit")"
for x in "$@"; do   # one job per test set (one network pass scores every floor)
  $cmd "$exp/log/floors_$x.log" csmvanet-tune-inference --exp_dir "$exp" --checkpoint "$checkpoint" \
    --data_dir "$data/$x" --floors "$floors" --mixes "$mixes" --snr_limits "$limits" --report "$exp/floors_$x.md" \
    --no_progress &
done
failed=0
for job in $(jobs -p); do wait "$job" || failed=1; done
[ "$failed" -eq 0 ] || { echo "$0: comparing the floors failed: see $exp/log/floors_<set>.log" >&2; exit 1; }
