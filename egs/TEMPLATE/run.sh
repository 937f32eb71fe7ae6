#!/usr/bin/env bash
# TEMPLATE recipe: copy this folder to egs/<corpus>/, write local/ (see local/README), set db.sh.
#
#   ./run.sh [--stage 0] [--stop_stage 5] [--skip_train true] [--nj 4] [--train_args "--train.epochs 10"]
#
#   0  get the corpus                     local/download.sh        -> $corpus_root
#   1  data dirs                          local/data_prep.sh       -> $datadir/...
#   2  mixtures/resampling + VAD labels   local/prepare_dump.sh    -> $dumpdir/{train,valid,test}
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
vad_config=conf/vad.yaml          # VAD label settings (csmvanet.data.vad.VADLabelConfig)
published=                        # YAML of published rows for the test sets' tables (marked 'published')

. ./path.sh
. ./cmd.sh
. ./db.sh
corpus_root=$CORPUS               # PLACEHOLDER: corpus root (db.sh: CORPUS)
recipe_init "$@"

# The corpus-specific scripts a copy of this template must provide (see local/README).
need_local() {
  if [ ! -x "local/$1" ]; then
    echo "$0: local/$1 is missing: this is the TEMPLATE, write it for your corpus (see local/README)" >&2
    exit 1
  fi
}

if run_stage 0 "corpus -> $corpus_root (skipped where present)"; then
  need_local download.sh
  local/download.sh "$corpus_root"
fi

if run_stage 1 "data dirs -> $datadir"; then
  need_local data_prep.sh
  # shellcheck disable=SC2086  # options of local/data_prep.sh
  local/data_prep.sh $local_data_opts "$corpus_root" "$datadir"
fi

if run_stage 2 "mixtures / resampling to $fs Hz and VAD labels -> $dumpdir/{$train_set,$valid_set,${test_sets// /,}}"; then
  need_local prepare_dump.sh
  opts=()   # ESPnet's switches, given to local/prepare_dump.sh only when set (see local/README)
  if $use_noise_ref; then opts+=(--use_noise_ref true); fi       # it must then write noise1.scp
  if [ "$audio_format" != wav ]; then opts+=(--audio_format "$audio_format"); fi
  local/prepare_dump.sh --nj "$nj" --cmd "$train_cmd" --fs "$fs" --train_config "$train_config" \
    --vad_config "$vad_config" "${opts[@]}" "$datadir" "$dumpdir"
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
