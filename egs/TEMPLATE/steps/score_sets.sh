#!/usr/bin/env bash
# Stage 5 of the recipes: score every decoded set of an experiment with steps/score.sh, then write
# <exp_dir>/RESULTS.md holding them all: a summary table (one Noisy and one enhanced row per set)
# followed by each set's own report (<exp_dir>/enhanced_<set>/scoring/RESULTS.md).
#
#   steps/score_sets.sh [options] <data_root> <exp_dir> <test_set> [<test_set> ...]
#
# <data_root>/<set> is the data dir (references) and <exp_dir>/<inference_tag>_<set> the decoded set
# (steps/decode.sh). The test sets come first in the report, then --valid_set (no published rows:
# the checkpoint was chosen on it). --append_md FILE appends a markdown file (e.g. a paper's table) to
# RESULTS.md after the report. Every set is scored even when one fails; the exit status is then
# non-zero, after RESULTS.md is written.
set -euo pipefail

nj=4
cmd=utils/run.pl
title=            # name of the enhanced rows (default: the experiment folder name)
published=        # YAML/TSV with published rows, shown in the test sets' tables
valid_set=        # the validation set, scored after the test sets
score_opts=       # extra csmvanet-score options
scoring_protocol= # ESPnet's per-metric files (steps/score.sh --scoring_protocol)
inference_tag=enhanced  # the decoded sets are <exp_dir>/<inference_tag>_<set> (ESPnet's name)
append_md=        # markdown file appended to RESULTS.md (e.g. published tables)
help_message="Usage: $0 [--nj N] [--cmd utils/run.pl] [--title T] [--published FILE] [--valid_set SET] [--score_opts \"...\"] [--scoring_protocol \"...\"] [--inference_tag enhanced] [--append_md FILE] <data_root> <exp_dir> <test_set>...
  e.g. $0 --nj 8 --valid_set valid dump exp/csmvanet_train test"

. utils/parse_options.sh

if [ $# -lt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
exp=$2
shift 2
case "$nj" in ''|*[!0-9]*|0) echo "$0: --nj must be a positive number, not '$nj'" >&2; exit 1 ;; esac
[ -z "$published" ] || [ -f "$published" ] || { echo "$0: --published: no such file: $published" >&2; exit 1; }
[ -z "$append_md" ] || [ -f "$append_md" ] || { echo "$0: --append_md: no such file: $append_md" >&2; exit 1; }
[ -n "$title" ] || title=$(basename "$exp")
sets=("$@")
[ -z "$valid_set" ] || sets+=("$valid_set")
for x in "${sets[@]}"; do  # every input before anything is scored
  for f in "$data/$x/spk1.scp" "$exp/${inference_tag}_$x/enhanced.scp"; do
    [ -f "$f" ] || { echo "$0: no such file: $f (set $x; run stage 4 first)" >&2; exit 1; }
  done
done

failed=()
collect=()
for x in "${sets[@]}"; do
  opts=()
  if [ "$x" != "$valid_set" ] && [ -n "$published" ]; then opts=(--published "$published"); fi
  steps/score.sh --nj "$nj" --cmd "$cmd" --title "$title" --score_opts "$score_opts" "${opts[@]}" \
    --scoring_protocol "$scoring_protocol" "$data/$x" "$exp/${inference_tag}_$x" || failed+=("$x")
  collect+=("$x=$exp/${inference_tag}_$x/scoring")
done
csmvanet-score --collect "${collect[@]}" --title "$title" --out_dir "$exp"
if [ -n "$append_md" ]; then
  { cat "$exp/RESULTS.md"; echo; cat "$append_md"; } > "$exp/RESULTS.md.tmp"
  mv "$exp/RESULTS.md.tmp" "$exp/RESULTS.md"
fi
echo "$0: wrote $exp/RESULTS.md (sets: ${sets[*]})"
if [ ${#failed[@]} -gt 0 ]; then
  echo "$0: some utterances of ${failed[*]} were not scored: see $exp/${inference_tag}_<set>/scoring/{errors,missing}" >&2
  exit 1
fi
