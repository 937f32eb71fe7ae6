#!/usr/bin/env bash
# CSM-VANet on VoiceBank+DEMAND: the paper's Table I.
#
#   ./run.sh                                   # stages 0-5 with the paper's config (conf/train.yaml)
#   ./run.sh --stage 3 --train_config conf/tuning/train_wo_msgc.yaml   # a Table I ablation
#   ./run.sh --stage 3 --train_args "--train.epochs 10" --tag quick    # overrides of the config
#   ./run.sh --skip_train true --inference_model valid.loss.best.pth   # decode and score another model
#
# Stages: 0 download (local/download.sh), 1 data dirs (local/data_prep.sh), 2 resample to 16 kHz +
# VAD labels (steps/prepare_dump.sh), 3 train, 4 enhance the valid and test sets, 5 score them ->
# $expdir/<tag>/RESULTS.md. Run it from this folder. See README.md.
set -euo pipefail
if [ ! -e steps/recipe.sh ] || [ ! -e utils/parse_options.sh ]; then
  echo "$0: run this from its folder (egs/voicebank): utils/ and steps/ must be here" >&2
  exit 1
fi
. steps/recipe.sh                 # the options every recipe has (./run.sh --help lists them all)

nj=8                              # parallel jobs: resampling, VAD labels, enhancement, scoring
fs=16000                          # sample rate of everything from stage 2 on
train_config=conf/train.yaml      # the paper's config; ablations: conf/tuning/*.yaml
published=conf/published.yaml     # the paper's rows shown in the test set's table, marked 'published'
check_md5=true                    # check the md5 sums of the downloaded zips
valid_speakers="p226 p287"        # training speakers held out for validation
test_speakers="p232 p257"         # the test set's speakers

. ./path.sh
. ./cmd.sh
. ./db.sh
voicebank_root=$VOICEBANK         # corpus root (db.sh: VOICEBANK)
recipe_init "$@"
if $use_noise_ref; then recipe_die "--use_noise_ref true: VoiceBank+DEMAND ships mixtures and clean speech, not the noise that was added (no noise1.scp)"; fi

if run_stage 0 "VoiceBank+DEMAND into $voicebank_root (skipped where present)"; then
  recipe_run local/download.sh --check_md5 "$check_md5" "$voicebank_root"
fi

if run_stage 1 "data dirs $datadir/{train,valid,test} (valid: $valid_speakers; test: $test_speakers)"; then
  # shellcheck disable=SC2086  # options of local/data_prep.sh
  recipe_run local/data_prep.sh $local_data_opts --valid_speakers "$valid_speakers" --test_speakers "$test_speakers" \
    "$voicebank_root" "$datadir"
fi

if run_stage 2 "resample 48 kHz -> $fs Hz (soxr) into $dumpdir, VAD labels"; then
  # shellcheck disable=SC2086  # each set holds ready-made mixtures: resampled (steps/prepare_dump.sh)
  recipe_run steps/prepare_dump.sh "${stage2_opts[@]}" --audio_in_set true "$datadir" "$dumpdir" $train_set $valid_set $test_sets
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
