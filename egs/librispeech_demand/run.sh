#!/usr/bin/env bash
# CSM-VANet on LibriSpeech+DEMAND simulated as in the paper: Table II (unseen noises PCAFETER,
# PSTATION, NRIVER at -5..15 dB).
#
#   ./run.sh                                        # stages 0-5: 200,000 training clips, 750 test clips
#   ./run.sh --train_sets "train-clean-100 train-clean-360"       # more training speech
#   ./run.sh --stage 2 --stop_stage 2 --num_train 20000 --dumpdir dump_20k    # a smaller training set
#
# Stages: 0 download, 1 speech and noise lists, 2 simulation (mixture specs + mixing) + VAD labels,
# 3 train, 4 enhance the test set, 5 score -> $expdir/<tag>/RESULTS.md. Run it from this folder.
set -euo pipefail
log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

stage=0
stop_stage=5
nj=8                              # parallel jobs: simulation, VAD labels, enhancement, scoring
datadir=data                      # stage 1: speech and noise lists
dumpdir=dump                      # stage 2: mixtures (16 kHz) + their data dirs
expdir=exp
fs=16000
train_sets=train-clean-100        # LibriSpeech training subsets (add train-clean-360 for more)
test_noises="PCAFETER PSTATION NRIVER"   # unseen at training; every other DEMAND environment trains
demand_channels=01                # DEMAND microphone(s) used as noise signals
num_train=200000                  # training clips (paper: 200,000)
train_seconds=2                   # clip length (paper: 2 s)
train_snrs=uniform:-10:15         # SNR drawn uniformly in [-10, 15] dB (paper)
num_valid=1000                    # validation clips from dev-clean with training noises (not in the paper)
test_snrs=-5,0,5,10,15            # dB (paper)
num_test_per_cond=50              # clips per test noise and SNR: 3 x 5 x 50 = 750 (paper)
test_seconds=0                    # test clip length; 0: whole test-clean utterances
seed=1                            # simulation seed (train: seed, valid: seed+1, test: seed+2)
train_config=conf/train.yaml      # the paper's config
train_args=                       # extra csmvanet-train options, e.g. "--train.epochs 10"
tag=                              # experiment name (default: csmvanet_<config name>)
ngpu=1                            # GPUs per node for training (0: CPU)
num_nodes=1
decode_ngpu=0                     # 1: enhance on a GPU
enhance_args=
vad_config=conf/vad.yaml
published=conf/published.yaml     # overall published numbers (Table I columns), marked 'published'
published_table2=conf/published_table2.md   # the paper's Table II, appended to RESULTS.md
check_md5=true

if [ ! -e utils/parse_options.sh ] || [ ! -e steps/train.sh ]; then
  echo "$0: run this from its folder (egs/librispeech_demand): utils/ and steps/ must be here" >&2
  exit 1
fi
. ./path.sh
. ./cmd.sh
. ./db.sh
librispeech_root=$LIBRISPEECH     # holds LibriSpeech/ (db.sh: LIBRISPEECH)
demand_root=$DEMAND               # holds <ENV>/chNN.wav (db.sh: DEMAND)
help_message=$(sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//')
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $*" >&2
  exit 1
fi

[ -n "$tag" ] || tag=csmvanet_$(basename "${train_config%.*}")
exp=$expdir/$tag

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: LibriSpeech ($train_sets dev-clean test-clean) into $librispeech_root, DEMAND into $demand_root"
  local/download.sh --train_sets "$train_sets" --check_md5 "$check_md5" "$librispeech_root" "$demand_root"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: speech lists $datadir/speech_{train,dev,test}, noise lists $datadir/noise_{train,test}"
  local/data_prep.sh --train_sets "$train_sets" --test_noises "$test_noises" --demand_channels "$demand_channels" \
    "$librispeech_root" "$demand_root" "$datadir"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: simulate train ($num_train x ${train_seconds} s, SNR $train_snrs), valid ($num_valid, dev-clean)," \
      "test (3 noises x {$test_snrs} dB x $num_test_per_cond) into $dumpdir"
  mkdir -p "$dumpdir"
  python3 - "$train_config" "$vad_config" "$dumpdir/vad_labels.yaml" <<'PY'
import sys
from csmvanet.config import dump_config, load_config
from csmvanet.fileio import atomic_write_text
train, vad = load_config(sys.argv[1]), load_config(sys.argv[2])
atomic_write_text(sys.argv[3], dump_config({"stft": train.get("stft") or {},
                                            "vad_labels": vad.get("vad_labels", vad) or {}}))
PY
  # set | speech list | noise list | SNRs | how many | clip length (s) | seed
  for spec in "train speech_train noise_train $train_snrs --num=$num_train $train_seconds $seed" \
              "valid speech_dev noise_train $train_snrs --num=$num_valid $train_seconds $((seed + 1))" \
              "test speech_test noise_test $test_snrs --per_condition=$num_test_per_cond $test_seconds $((seed + 2))"; do
    read -r x speech noise snrs count seconds s <<< "$spec"
    dst=$dumpdir/$x
    mkdir -p "$dst/log"
    # 1. the mixture list (readable, tab-separated: speech, noise, offsets, length, SNR, gain), then
    # 2. the mixtures: $dst/wav/{noisy,clean}/<utt>.wav and the data dir $dst (utt2noise, utt2snr, ...)
    $train_cmd --num-threads "$nj" "$dst/log/simulate.log" \
      csmvanet-simulate --quiet --fs "$fs" --make_spec --spec "$dst/spec.tsv" --seed "$s" \
        --speech_scp "$datadir/$speech/wav.scp" --speech_lengths "$datadir/$speech/utt2num_samples" \
        --speech_utt2spk "$datadir/$speech/utt2spk" \
        --noise_scp "$datadir/$noise/wav.scp" --noise_lengths "$datadir/$noise/utt2num_samples" \
        --noise2type "$datadir/$noise/noise2type" \
        --snrs="$snrs" "$count" --length "$seconds" \
        --data_dir "$dst" --out_wav_dir "$dst/wav" --nj "$nj"
    $train_cmd --num-threads "$nj" "$dst/log/vad_labels.log" \
      csmvanet-vad-labels --quiet --nj "$nj" --config "$dumpdir/vad_labels.yaml" --scp "$dst/spk1.scp" \
        --out_dir "$dst"
    utils/validate_data_dir.sh --fs "$fs" --stft-config "$dumpdir/vad_labels.yaml" \
      --require "wav.scp spk1.scp utt2spk spk2utt utt2num_samples utt2noise utt2snr vad_labels.scp frame_shift" "$dst"
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
  log "Stage 5: score $exp/enhanced_test against $dumpdir/test (Table II: per noise and SNR)"
  score_ok=true
  steps/score.sh --nj "$nj" --cmd "$decode_cmd" --title "$tag" --published "$published" \
    --report_copy "$exp/RESULTS.md" "$dumpdir/test" "$exp/enhanced_test" || score_ok=false
  # the paper's Table II for comparison, after our report
  { cat "$exp/RESULTS.md"; echo; cat "$published_table2"; } > "$exp/RESULTS.md.tmp"
  mv "$exp/RESULTS.md.tmp" "$exp/RESULTS.md"
  log "Results: $exp/RESULTS.md"
  $score_ok || { log "some utterances were not scored: see $exp/enhanced_test/scoring/"; exit 1; }
fi
log "Done (stages $stage-$stop_stage)"
