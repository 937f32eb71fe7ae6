#!/usr/bin/env bash
# CSM-VANet on VoiceBank+DEMAND: the paper's Table I.
#
#   ./run.sh                                   # stages 0-5 with the paper's config (conf/train.yaml)
#   ./run.sh --stage 3 --train_config conf/tuning/train_wo_msgc.yaml   # a Table I ablation
#   ./run.sh --stage 3 --train_args "--train.epochs 10" --tag quick    # overrides of the config
#   ./run.sh --skip_train true --inference_model valid.loss.best.pth   # decode and score another model
#
# Stages: 0 download (local/download.sh), 1 data dirs (local/data_prep.sh), 2 resample to 16 kHz +
# VAD labels (local/prepare_dump.sh), 3 train, 4 enhance the valid and test sets, 5 score them ->
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
vad_config=conf/vad.yaml          # VAD label settings (csmvanet.data.vad.VADLabelConfig)
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
  local/download.sh --check_md5 "$check_md5" "$voicebank_root"
fi

if run_stage 1 "data dirs $datadir/{train,valid,test} (valid: $valid_speakers; test: $test_speakers)"; then
  # shellcheck disable=SC2086  # options of local/data_prep.sh
  local/data_prep.sh $local_data_opts --valid_speakers "$valid_speakers" --test_speakers "$test_speakers" \
    "$voicebank_root" "$datadir"
fi

if run_stage 2 "resample 48 kHz -> $fs Hz (soxr) into $dumpdir, VAD labels"; then
  local/prepare_dump.sh --nj "$nj" --cmd "$train_cmd" --fs "$fs" --train_config "$train_config" \
    --vad_config "$vad_config" --audio_format "$audio_format" --sets "$train_set $valid_set $test_sets" "$datadir" "$dumpdir"
  if [ "$train_data" != "$train_set" ]; then   # ESPnet's speed perturbation / length filter -> $dumpdir/$train_data
    steps/perturb_train_set.sh --nj "$nj" --fs "$fs" --speed_perturb_factors "${speed_perturb_factors:-1.0}" \
      --min_wav_duration "$min_wav_duration" --max_wav_duration "$max_wav_duration" --audio_format "$audio_format" \
      --train_config "$train_config" --vad_config "$vad_config" "$dumpdir/$train_set" "$dumpdir/$train_data"
  fi
fi

if run_stage 3 "train $exp on $dumpdir/$train_data with $train_config${train_args:+ (overrides: $train_args)}"; then
  steps/train.sh --cmd "$train_job_cmd" --ngpu "$ngpu" --num_nodes "$num_nodes" --train_args "$train_args" \
    --init_param "$init_param" "$train_config" "$dumpdir/$train_data" "$dumpdir/$valid_set" "$exp"
fi

if run_stage 4 "enhance $valid_set $test_sets with $exp/$inference_model -> $exp/${inference_tag}_<set>"; then
  for x in $valid_set $test_sets; do
    steps/decode.sh --nj "$inference_nj" --cmd "$inference_cmd" --use_gpu "$gpu_inference" \
      --model "$inference_model" --enhance_args "$enhance_args" "$dumpdir/$x" "$exp" "$exp/${inference_tag}_$x"
  done
fi

if run_stage 5 "score $test_sets $valid_set -> $exp/RESULTS.md"; then
  steps/score_sets.sh --nj "$nj" --cmd "$decode_cmd" --title "$tag" --published "$published" \
    --score_opts "$score_opts" --valid_set "$valid_set" \
    --inference_tag "$inference_tag" --scoring_protocol "$scoring_protocol" "$dumpdir" "$exp" $test_sets
fi
log "Done (stages $stage-$stop_stage)"
