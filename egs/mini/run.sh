#!/usr/bin/env bash
# egs/mini: CSM-VANet end to end on an embedded synthetic corpus, no download needed.
#
#   ./run.sh [--stage 0] [--stop_stage 5] [--nj 2] [--train_args "--train.epochs 2"] ...
#
#   0  make the corpus (speech-like utterances of 9 speakers, 6 noise types)   -> corpus/
#   1  data prep: speech lists by speaker split, noise lists                    -> data/speech_*, data/noise_*
#   2  simulate mixtures (train 2 s clips, valid/test whole utterances) + VAD labels -> data/{train,valid,test}, dump/
#   3  train                                                                   -> exp/<tag>/
#   4  enhance the test set                                                    -> exp/<tag>/enhanced_test/
#   5  score                                                                   -> exp/<tag>/RESULTS.md
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"; }

stage=0
stop_stage=5
nj=2                          # parallel jobs for simulation, decoding and scoring
ngpu=0                        # 0: CPU; >1: DDP through torchrun
corpus=corpus                 # stage 0 writes it here
utts_per_speaker=20
num_train=600                 # 2 s training mixtures
train_snrs=uniform:-5:10      # dB
test_snrs=-5,0,5              # dB, one drawn per test utterance
seed=1
train_config=conf/train.yaml
train_args=""                 # overrides for csmvanet-train, e.g. "--train.epochs 1"
tag=""                        # experiment name; default: the config's name
datadir=data
dumpdir=dump
expdir=exp

help_message="Usage: $0 [--stage N] [--stop_stage N] [--nj N] [--train_args \"...\"] [--tag T]"
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

[ -n "$tag" ] || tag=$(basename "$train_config" .yaml)
exp=$expdir/$tag

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "stage 0: embedded corpus -> $corpus"
  python local/make_corpus.py "$corpus" --utts_per_speaker "$utts_per_speaker"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: data prep -> $datadir"
  local/data_prep.sh "$corpus" "$datadir"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: simulation and VAD labels"
  # training: 2 s clips, SNR drawn from $train_snrs; validation: whole utterances of the held-out
  # speaker with training noises; test: whole utterances of unseen speakers with unseen noises.
  # Each data dir is built under a temporary name and renamed once it validates, so a killed run
  # leaves nothing a later stage would trust (the audio is written atomically file by file and is
  # the same on every run: the simulation is a pure function of the spec and the seed).
  for part in train valid test; do
    case $part in
      train) noise=noise_train; opts=(--num "$num_train" --length 2 --snrs "$train_snrs" --seed "$seed") ;;
      valid) noise=noise_train; opts=(--snrs "$test_snrs" --seed "$((seed + 1))") ;;
      test)  noise=noise_test;  opts=(--snrs "$test_snrs" --seed "$((seed + 2))") ;;
    esac
    tmp=$datadir/.tmp.$part
    rm -rf "$tmp"
    csmvanet-simulate --make_spec --speech_scp "$datadir/speech_$part/wav.scp" \
      --speech_utt2spk "$datadir/speech_$part/utt2spk" \
      --noise_scp "$datadir/$noise/wav.scp" --noise2type "$datadir/$noise/utt2noise" \
      "${opts[@]}" --spec "$tmp/spec.tsv" \
      --out_wav_dir "$dumpdir/$part" --data_dir "$tmp" --nj "$nj" --quiet
    # VAD labels live beside the audio in dump/ (the scp holds the ark's absolute path).
    csmvanet-vad-labels --scp "$tmp/spk1.scp" --out_dir "$dumpdir/$part/vad" --config conf/vad.yaml \
      --stft_config "$train_config" --nj "$nj" --quiet
    cp "$dumpdir/$part/vad/vad_labels.scp" "$dumpdir/$part/vad/frame_shift" "$tmp/"
    utils/validate_data_dir.sh "$tmp"
    rm -rf "$datadir/$part" && mv "$tmp" "$datadir/$part"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: train $train_config -> $exp"
  steps/train.sh --cmd "$cuda_cmd" --ngpu "$ngpu" --train_args "$train_args" \
    "$train_config" "$datadir/train" "$datadir/valid" "$exp"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: enhance $datadir/test -> $exp/enhanced_test"
  steps/decode.sh --nj "$nj" --cmd "$decode_cmd" "$datadir/test" "$exp" "$exp/enhanced_test"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "stage 5: score -> $exp/RESULTS.md"
  steps/score.sh --nj "$nj" --cmd "$decode_cmd" --title "egs/mini: $tag" --report_copy "$exp/RESULTS.md" \
    "$datadir/test" "$exp/enhanced_test"
  log "done: $exp/RESULTS.md"
fi
