#!/usr/bin/env bash
# TEMPLATE recipe: copy this folder to egs/<corpus>/, write local/ (see local/README), set db.sh.
#
#   ./run.sh [--stage 0] [--stop_stage 5] [--skip_train true] [--nj 4] [--train_args "--train.epochs 10"]
#
#   0  get the corpus                     local/download.sh        -> $corpus_root
#   1  data dirs                          local/data_prep.sh       -> $datadir/...
#   2  mixtures/resampling + VAD labels   steps/prepare_dump.sh    -> $dumpdir/{train,valid,test}
#   3  train                              steps/train.sh           -> $expdir/<tag>/
#   4  enhance the valid and test sets    steps/decode.sh          -> $expdir/<tag>/enhanced_<set>/
#   5  score them                         steps/score_sets.sh      -> $expdir/<tag>/RESULTS.md
set -euo pipefail
if [ ! -e steps/recipe.sh ] || [ ! -e utils/parse_options.sh ]; then
  echo "$0: run this from its folder: utils/ and steps/ must be here (symlinks to ../../utils, ../TEMPLATE/steps)" >&2
  exit 1
fi
. steps/recipe.sh                 # the options every recipe has (./run.sh --help lists them all)

nj=4                              # parallel jobs (simulation, VAD labels, scoring)
fs=16000                          # sample rate of everything from stage 2 on
train_config=conf/train.yaml      # PLACEHOLDER: copy a config, e.g. egs/voicebank/conf/train.yaml

. ./path.sh
. ./cmd.sh
. ./db.sh
corpus_root=$CORPUS               # PLACEHOLDER: corpus root (db.sh: CORPUS)
recipe_init "$@"

# The corpus-specific scripts a copy of this template must provide (see local/README).
need_local() {
  if [ ! -x "local/$1" ] && ! $dry_run; then
    echo "$0: local/$1 is missing: this is the TEMPLATE, write it for your corpus (see local/README)" >&2
    exit 1
  fi
}

if run_stage 0 "corpus -> $corpus_root (skipped where present)"; then
  need_local download.sh
  recipe_run local/download.sh "$corpus_root"
fi

if run_stage 1 "data dirs -> $datadir"; then
  need_local data_prep.sh
  # shellcheck disable=SC2086  # options of local/data_prep.sh
  recipe_run local/data_prep.sh $local_data_opts "$corpus_root" "$datadir"
fi

if run_stage 2 "mixtures / resampling to $fs Hz and VAD labels -> $dumpdir/{$train_set,$valid_set,${test_sets// /,}}"; then
  # PLACEHOLDER: one argument per set (steps/prepare_dump.sh). A set of ready-made mixtures (stage 1
  # wrote $datadir/<set>/wav.scp and spk1.scp): its name, resampled to $fs Hz. A set to simulate from
  # clean speech and noise lists: "<set> <speech list> <noise list> <csmvanet-simulate options>",
  # e.g. "train speech_train noise_train --num 1000 --length 2 --snrs uniform:-5:10 --seed 1" (egs/mini).
  # shellcheck disable=SC2086
  recipe_run steps/prepare_dump.sh "${stage2_opts[@]}" "$datadir" "$dumpdir" $train_set $valid_set $test_sets
fi

if run_stage 3 "train $exp on $dumpdir/$train_data with $train_config${train_args:+ (overrides: $train_args)}"; then
  recipe_run steps/train.sh "${stage3_opts[@]}" "$train_config" "$dumpdir/$train_data" "$dumpdir/$valid_set" "$exp"
fi

if run_stage 4 "enhance $valid_set $test_sets with $exp/$inference_model -> $exp/${inference_tag}_<set>"; then
  for x in $valid_set $test_sets; do
    recipe_run steps/decode.sh "${stage4_opts[@]}" "$dumpdir/$x" "$exp" "$exp/${inference_tag}_$x"
  done
fi

if run_stage 5 "score $test_sets $valid_set -> $exp/RESULTS.md"; then
  recipe_run steps/score_sets.sh "${stage5_opts[@]}" "$dumpdir" "$exp" $test_sets
fi
log "Done (stages $stage-$stop_stage)"
