#!/usr/bin/env bash
# CSM-VANet on VoiceBank+DEMAND: the paper's Table I.
#
#   ./run.sh                                   # stages 0-5 with the paper's config (conf/train.yaml)
#   ./run.sh --stage 3 --train_config conf/tuning/train_wo_msgc.yaml   # a Table I ablation
#   ./run.sh --stage 3 --train_args "--train.epochs 10" --tag quick    # overrides of the config
#
# Stages: 0 download, 1 data dirs, 2 resample to 16 kHz + VAD labels, 3 train, 4 enhance the test
# set, 5 score -> $expdir/<tag>/RESULTS.md. Run it from this folder. See README.md.
set -euo pipefail
log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

stage=0
stop_stage=5
nj=8                              # parallel jobs: resampling, VAD labels, enhancement, scoring
datadir=data                      # stage 1: data dirs at 48 kHz pointing into the corpus
dumpdir=dump                      # stage 2: 16 kHz audio + the data dirs used from then on
expdir=exp
fs=16000
train_config=conf/train.yaml      # the paper's config; ablations: conf/tuning/*.yaml
train_args=                       # extra csmvanet-train options, e.g. "--train.epochs 10"
tag=                              # experiment name (default: csmvanet_<config name>)
ngpu=1                            # GPUs per node for training (0: CPU)
num_nodes=1                       # nodes for training (Slurm)
decode_ngpu=0                     # 1: enhance on a GPU (--device cuda, one per job)
enhance_args=                     # extra csmvanet-enhance options
vad_config=conf/vad.yaml          # VAD label settings (csmvanet.vad.VADLabelConfig)
published=conf/published.yaml     # the paper's rows shown in RESULTS.md, marked 'published'
check_md5=true
valid_speakers="p226 p287"
test_speakers="p232 p257"

if [ ! -e utils/parse_options.sh ] || [ ! -e steps/train.sh ]; then
  echo "$0: run this from its folder (egs/voicebank): utils/ and steps/ must be here" >&2
  exit 1
fi
. ./path.sh
. ./cmd.sh
. ./db.sh
voicebank_root=$VOICEBANK         # corpus root (db.sh: VOICEBANK)
help_message=$(sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//')
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $*" >&2
  exit 1
fi

[ -n "$tag" ] || tag=csmvanet_$(basename "${train_config%.*}")
exp=$expdir/$tag

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: VoiceBank+DEMAND into $voicebank_root (skipped where present)"
  local/download.sh --check_md5 "$check_md5" "$voicebank_root"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: data dirs $datadir/{train,valid,test} (valid: $valid_speakers; test: $test_speakers)"
  local/data_prep.sh --valid_speakers "$valid_speakers" --test_speakers "$test_speakers" \
    "$voicebank_root" "$datadir"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: resample 48 kHz -> $fs Hz (soxr) into $dumpdir, VAD labels"
  # VAD frames = model frames: the stft section of the training config + the settings of $vad_config.
  mkdir -p "$dumpdir"
  python3 - "$train_config" "$vad_config" "$dumpdir/vad_labels.yaml" <<'PY'
import sys
from csmvanet.config import dump_config, load_config
from csmvanet.fileio import atomic_write_text
train, vad = load_config(sys.argv[1]), load_config(sys.argv[2])
atomic_write_text(sys.argv[3], dump_config({"stft": train.get("stft") or {},
                                            "vad_labels": vad.get("vad_labels", vad) or {}}))
PY
  for x in train valid test; do
    src=$datadir/$x
    dst=$dumpdir/$x
    mkdir -p "$dst/log"
    $train_cmd --num-threads "$nj" "$dst/log/resample_noisy.log" \
      csmvanet-resample --quiet --nj "$nj" --fs "$fs" --scp "$src/wav.scp" --out_dir "$dst/wav/noisy" \
        --out_scp "$dst/wav.scp" --utt2num_samples "$dst/utt2num_samples"
    $train_cmd --num-threads "$nj" "$dst/log/resample_clean.log" \
      csmvanet-resample --quiet --nj "$nj" --fs "$fs" --scp "$src/spk1.scp" --out_dir "$dst/wav/clean" \
        --out_scp "$dst/spk1.scp"
    for f in utt2spk spk2utt text utt2noise utt2snr; do
      rm -f "$dst/$f"
      if [ -f "$src/$f" ]; then cp "$src/$f" "$dst/$f"; fi
    done
    $train_cmd --num-threads "$nj" "$dst/log/vad_labels.log" \
      csmvanet-vad-labels --quiet --nj "$nj" --config "$dumpdir/vad_labels.yaml" --scp "$dst/spk1.scp" \
        --out_dir "$dst"
    utils/validate_data_dir.sh --fs "$fs" --stft-config "$dumpdir/vad_labels.yaml" \
      --require "wav.scp spk1.scp utt2spk spk2utt utt2num_samples vad_labels.scp frame_shift" "$dst"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: train $exp with $train_config ${train_args:+(overrides: $train_args)}"
  if [ "$ngpu" -gt 0 ]; then cmd=$cuda_cmd; else cmd=$train_cmd; fi
  steps/train.sh --cmd "$cmd" --ngpu "$ngpu" --num_nodes "$num_nodes" --train_args "$train_args" \
    "$train_config" "$dumpdir/train" "$dumpdir/valid" "$exp"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: enhance $dumpdir/test -> $exp/enhanced_test"
  if [ "$decode_ngpu" -gt 0 ]; then
    steps/decode.sh --nj "$nj" --cmd "$cuda_cmd --gpu 1" --enhance_args "--device cuda $enhance_args" \
      "$dumpdir/test" "$exp" "$exp/enhanced_test"
  else
    steps/decode.sh --nj "$nj" --cmd "$decode_cmd" --enhance_args "$enhance_args" \
      "$dumpdir/test" "$exp" "$exp/enhanced_test"
  fi
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "Stage 5: score $exp/enhanced_test against $dumpdir/test"
  score_ok=true
  steps/score.sh --nj "$nj" --cmd "$decode_cmd" --title "$tag" --published "$published" \
    --report_copy "$exp/RESULTS.md" "$dumpdir/test" "$exp/enhanced_test" || score_ok=false
  log "Results: $exp/RESULTS.md"
  $score_ok || { log "some utterances were not scored: see $exp/enhanced_test/scoring/"; exit 1; }
fi
log "Done (stages $stage-$stop_stage)"
