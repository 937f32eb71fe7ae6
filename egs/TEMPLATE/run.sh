#!/usr/bin/env bash
# TEMPLATE recipe: copy this folder to egs/<corpus>/, write local/ (see local/README), set db.sh.
#
#   ./run.sh [--stage 0] [--stop_stage 5] [--nj 4] [--ngpu 1] [--train_args "--train.epochs 10"]
#
#   0  get the corpus                     local/download.sh        -> $corpus_root
#   1  data dirs                          local/data_prep.sh       -> $datadir/{train,valid,test}
#   2  mixtures/resampling + VAD labels   local/prepare_dump.sh    -> $dumpdir/{train,valid,test}
#   3  train                              steps/train.sh           -> $expdir/<tag>/
#   4  enhance the test sets              steps/decode.sh          -> $expdir/<tag>/enhanced_<set>/
#   5  score                              steps/score.sh           -> $expdir/<tag>/RESULTS.md
set -euo pipefail
log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

stage=0
stop_stage=5
nj=4                          # parallel jobs (simulation, VAD labels, enhancement, scoring)
fs=16000                      # sample rate of everything from stage 2 on
datadir=data                  # stage 1 output: data dirs pointing into the corpus
dumpdir=dump                  # stage 2 output: the data dirs used for training and testing
expdir=exp
train_set=train
valid_set=valid               # the checkpoint is chosen on this set, never on a test set
test_sets="test"              # enhanced and scored in stages 4-5
train_config=conf/train.yaml  # PLACEHOLDER: copy a config, e.g. egs/voicebank/conf/train.yaml
train_args=                   # extra csmvanet-train options, e.g. "--train.epochs 10"
tag=                          # experiment name (default: csmvanet_<config name>)
ngpu=1                        # GPUs for training (0: CPU)
enhance_args=                 # extra csmvanet-enhance options, e.g. "--device cuda"

if [ ! -e utils/parse_options.sh ] || [ ! -e steps ]; then
  echo "$0: run this from its folder: utils/ and steps/ must be here (symlinks to ../../utils, ../TEMPLATE/steps)" >&2
  exit 1
fi
. ./path.sh
. ./cmd.sh
. ./db.sh
corpus_root=$CORPUS           # PLACEHOLDER: the variable of your corpus in db.sh
help_message=$(sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//')
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $*" >&2
  exit 1
fi

[ -n "$tag" ] || tag=csmvanet_$(basename "${train_config%.*}")
exp=$expdir/$tag

# The corpus-specific scripts a copy of this template must provide (see local/README).
need_local() {
  if [ ! -x "local/$1" ]; then
    echo "$0: local/$1 is missing: this is the TEMPLATE, write it for your corpus (see local/README)" >&2
    exit 1
  fi
}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: corpus -> $corpus_root (skipped where present)"
  need_local download.sh
  local/download.sh "$corpus_root"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: data dirs -> $datadir/{$train_set,$valid_set,${test_sets// /,}}"
  need_local data_prep.sh
  local/data_prep.sh "$corpus_root" "$datadir"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: mixtures / resampling to $fs Hz and VAD labels -> $dumpdir"
  need_local prepare_dump.sh
  local/prepare_dump.sh --nj "$nj" --cmd "$train_cmd" --fs "$fs" "$datadir" "$dumpdir"
  for x in $train_set $valid_set $test_sets; do
    utils/validate_data_dir.sh --fs "$fs" --require "wav.scp spk1.scp utt2spk spk2utt utt2num_samples vad_labels.scp frame_shift" \
      "$dumpdir/$x"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: train $exp with $train_config ${train_args:+(overrides: $train_args)}"
  if [ "$ngpu" -gt 0 ]; then cmd=$cuda_cmd; else cmd=$train_cmd; fi
  steps/train.sh --cmd "$cmd" --ngpu "$ngpu" --train_args "$train_args" \
    "$train_config" "$dumpdir/$train_set" "$dumpdir/$valid_set" "$exp"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  for x in $test_sets; do
    log "Stage 4: enhance $dumpdir/$x -> $exp/enhanced_$x"
    steps/decode.sh --nj "$nj" --cmd "$decode_cmd" --enhance_args "$enhance_args" \
      "$dumpdir/$x" "$exp" "$exp/enhanced_$x"
  done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  for x in $test_sets; do
    log "Stage 5: score $exp/enhanced_$x against $dumpdir/$x"
    steps/score.sh --nj "$nj" --cmd "$decode_cmd" --title "$tag" "$dumpdir/$x" "$exp/enhanced_$x"
  done
  first=${test_sets%% *}
  cp "$exp/enhanced_$first/scoring/RESULTS.md" "$exp/RESULTS.md"
  log "Results: $exp/RESULTS.md (and $exp/enhanced_<set>/scoring/ for every test set)"
fi
log "Done (stages $stage-$stop_stage)"
