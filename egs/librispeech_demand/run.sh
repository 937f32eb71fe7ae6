#!/usr/bin/env bash
# CSM-VANet on LibriSpeech+DEMAND simulated as in the paper: Table II (unseen noises PCAFETER,
# PSTATION, NRIVER at -5..15 dB).
#
#   ./run.sh                                        # stages 0-5: 200,000 training clips, 750 test clips
#   ./run.sh --train_sets "train-clean-100 train-clean-360"       # more training speech
#   ./run.sh --stage 2 --stop_stage 2 --num_train 20000 --dumpdir dump_20k    # a smaller training set
#
# Stages: 0 download (local/download.sh), 1 speech and noise lists (local/data_prep.sh; DEMAND
# channels not at 16 kHz are resampled), 2 simulation + VAD labels (steps/prepare_dump.sh), 3 train,
# 4 enhance the valid and test sets, 5 score them -> $expdir/<tag>/RESULTS.md. Run it from this folder.
set -euo pipefail
if [ ! -e steps/recipe.sh ] || [ ! -e utils/parse_options.sh ]; then
  echo "$0: run this from its folder (egs/librispeech_demand): utils/ and steps/ must be here" >&2
  exit 1
fi
. steps/recipe.sh                 # the options every recipe has (./run.sh --help lists them all)

nj=8                              # parallel jobs: simulation, VAD labels, enhancement, scoring
fs=16000                          # sample rate of the mixtures (16000 only: LibriSpeech is not resampled)
train_sets=train-clean-100        # LibriSpeech training subsets (add train-clean-360 for more)
test_noises="PCAFETER PSTATION NRIVER"   # unseen at training; every other DEMAND environment trains
demand_channels=01                # DEMAND microphone(s) used as noise signals
num_train=200000                  # training clips (paper: 200,000)
train_seconds=2                   # clip length (paper: 2 s)
train_snrs=uniform:-10:15         # SNR drawn uniformly in [-10, 15] dB (paper)
num_valid=1000                    # validation clips from dev-clean with training noises (not in the paper)
test_snrs=-5,0,5,10,15            # test SNRs in dB (paper)
num_test_per_cond=50              # clips per test noise and SNR: 3 x 5 x 50 = 750 (paper)
test_seconds=0                    # test clip length; 0: whole test-clean utterances
seed=1                            # simulation seed (train: seed, valid: seed+1, test: seed+2)
train_config=conf/train.yaml      # the paper's config
published=conf/published.yaml     # overall published numbers (Table I columns) of the test set, marked 'published'
published_table2=conf/published_table2.md   # the paper's Table II, appended to RESULTS.md
check_md5=true                    # check the md5 sums of the downloads

. ./path.sh
. ./cmd.sh
. ./db.sh
librispeech_root=$LIBRISPEECH     # holds LibriSpeech/ (db.sh: LIBRISPEECH)
demand_root=$DEMAND               # holds <ENV>/chNN.wav (db.sh: DEMAND)
recipe_init "$@"
recipe_ints num_train num_valid num_test_per_cond seed
recipe_only_fs 16000                 # LibriSpeech is 16 kHz and its speech is not resampled here

if run_stage 0 "LibriSpeech ($train_sets dev-clean test-clean) into $librispeech_root, DEMAND into $demand_root"; then
  recipe_run local/download.sh --train_sets "$train_sets" --check_md5 "$check_md5" "$librispeech_root" "$demand_root"
fi

if run_stage 1 "speech lists $datadir/speech_{train,dev,test}, noise lists $datadir/noise_{train,test}"; then
  # shellcheck disable=SC2086  # options of local/data_prep.sh
  recipe_run local/data_prep.sh $local_data_opts --train_sets "$train_sets" --test_noises "$test_noises" --demand_channels "$demand_channels" \
    --fs "$fs" "$librispeech_root" "$demand_root" "$datadir"
fi

if run_stage 2 "simulate train ($num_train x ${train_seconds} s, SNR $train_snrs), valid ($num_valid, dev-clean), test (3 noises x {$test_snrs} dB x $num_test_per_cond) into $dumpdir"; then
  # each set: <set> <speech list> <noise list> <csmvanet-simulate options> (steps/prepare_dump.sh)
  recipe_run steps/prepare_dump.sh "${stage2_opts[@]}" --noise_types noise2type --audio_in_set true "$datadir" "$dumpdir" \
    "train speech_train noise_train --num $num_train --length $train_seconds --snrs=$train_snrs --seed $seed" \
    "valid speech_dev noise_train --num $num_valid --length $train_seconds --snrs=$train_snrs --seed $((seed + 1))" \
    "test speech_test noise_test --per_condition $num_test_per_cond --length $test_seconds --snrs=$test_snrs --seed $((seed + 2))"
fi

if run_stage 3 "train $exp on $dumpdir/$train_data with $train_config${train_args:+ (overrides: $train_args)}"; then
  recipe_run steps/train.sh "${stage3_opts[@]}" "$train_config" "$dumpdir/$train_data" "$dumpdir/$valid_set" "$exp"
fi

if run_stage 4 "enhance $valid_set $test_sets with $exp/$inference_model -> $exp/${inference_tag}_<set>"; then
  for x in $valid_set $test_sets; do
    recipe_run steps/decode.sh "${stage4_opts[@]}" "$dumpdir/$x" "$exp" "$exp/${inference_tag}_$x"
  done
fi

if run_stage 5 "score $test_sets $valid_set -> $exp/RESULTS.md (Table II: per noise and SNR)"; then
  recipe_run steps/score_sets.sh "${stage5_opts[@]}" --append_md "$published_table2" "$dumpdir" "$exp" $test_sets
fi
log "Done (stages $stage-$stop_stage)"
