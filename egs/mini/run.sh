#!/usr/bin/env bash
# egs/mini: CSM-VANet end to end on an embedded synthetic corpus, no download needed.
#
#   ./run.sh [--stage 0] [--stop_stage 5] [--nj 2] [--train_args "--train.epochs 2"] ...
#
#   0  make the corpus (speech-like utterances of 9 speakers, 6 noise types)    local/download.sh     -> corpus/
#   1  data prep: speech lists by speaker split, noise lists                     local/data_prep.sh    -> data/
#   2  simulate mixtures (train 2 s clips, valid/test whole utterances) + VAD labels  steps/prepare_dump.sh -> dump/
#   3  train                                                                    steps/train.sh        -> exp/<tag>/
#   4  enhance the valid and test sets                                          steps/decode.sh       -> exp/<tag>/enhanced_<set>/
#   5  score them                                                               steps/score_sets.sh   -> exp/<tag>/RESULTS.md
set -euo pipefail
if [ ! -e steps/recipe.sh ] || [ ! -e utils/parse_options.sh ]; then
  echo "$0: run this from its folder (egs/mini): utils/ and steps/ must be here" >&2
  exit 1
fi
. steps/recipe.sh                 # the options every recipe has (./run.sh --help lists them all)

nj=2                              # parallel jobs: simulation, VAD labels, enhancement, scoring
ngpu=0                            # GPUs for training (0: CPU; N > 1: DDP through torchrun)
corpus=corpus                     # stage 0 writes the corpus here
utts_per_speaker=20               # utterances per speaker of the corpus
num_train=600                     # 2 s training mixtures
train_snrs=uniform:-5:10          # training SNRs in dB
test_snrs=-5,0,5                  # valid/test SNRs in dB, one drawn per utterance
seed=1                            # simulation seed (train: seed, valid: seed+1, test: seed+2)
train_config=conf/train.yaml      # the mini config (a small CSM-VANet)

. ./path.sh
. ./cmd.sh
recipe_init "$@"
recipe_ints utts_per_speaker num_train seed
recipe_only_fs 16000                 # the embedded corpus is 16 kHz (--fs is refused otherwise)

if run_stage 0 "embedded corpus -> $corpus"; then
  recipe_run local/download.sh --utts_per_speaker "$utts_per_speaker" "$corpus"
fi

if run_stage 1 "data prep -> $datadir"; then
  # shellcheck disable=SC2086  # options of local/data_prep.sh
  recipe_run local/data_prep.sh $local_data_opts "$corpus" "$datadir"
fi

if run_stage 2 "simulation and VAD labels -> $dumpdir"; then
  # each set: <set> <speech list> <noise list> <csmvanet-simulate options> (steps/prepare_dump.sh)
  recipe_run steps/prepare_dump.sh "${stage2_opts[@]}" "$datadir" "$dumpdir" \
    "train speech_train noise_train --num $num_train --length 2 --snrs $train_snrs --seed $seed" \
    "valid speech_valid noise_train --snrs $test_snrs --seed $((seed + 1))" \
    "test speech_test noise_test --snrs $test_snrs --seed $((seed + 2))"
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
