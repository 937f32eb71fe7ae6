#!/usr/bin/env bash
# Stage 2 of egs/mini: mixtures and VAD labels (csmvanet-simulate, csmvanet-vad-labels).
#   train: 2 s clips of the training speakers, SNR drawn from --train_snrs (seed)
#   valid: whole utterances of the held-out speaker with training noises (seed + 1)
#   test:  whole utterances of unseen speakers with unseen noises (seed + 2)
# Writes the data dirs <dump_dir>/{train,valid,test} (spec.tsv, wav.scp, spk1.scp, utt2spk, vad_labels.scp, frame_shift,
# ...); the audio and VAD arks go to <dump_dir>/audio/<set>/. Each data dir is built under a
# temporary name and renamed once it validates, so a killed run leaves nothing a later stage would
# trust (the audio is written atomically file by file and is the same on every run: the simulation
# is a pure function of the spec and the seed).
#
#   local/prepare_dump.sh [--nj 2] [--train_config conf/train.yaml] [--vad_config conf/vad.yaml]
#     [--num_train 600] [--train_snrs uniform:-5:10] [--test_snrs -5,0,5] [--seed 1] <data_dir> <dump_dir>
set -euo pipefail

nj=2
train_config=conf/train.yaml
vad_config=conf/vad.yaml
num_train=600
train_snrs=uniform:-5:10
test_snrs=-5,0,5
seed=1
use_noise_ref=false   # also write the scaled noise of each mixture (noise1.scp, ESPnet's noise reference)
audio_format=wav      # wav or flac
help_message="Usage: $0 [--use_noise_ref false] [--audio_format wav] [--nj 2] [--train_config F] [--vad_config F] [--num_train 600] [--train_snrs SPEC] [--test_snrs LIST] [--seed 1] <data_dir> <dump_dir>"
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
dump=$2
for v in nj num_train seed; do
  case "${!v}" in ''|*[!0-9]*) echo "$0: --$v must be a number, not '${!v}'" >&2; exit 1 ;; esac
done
for f in "$train_config" "$vad_config" "$data/speech_train/wav.scp" "$data/noise_train/wav.scp"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done

case "$use_noise_ref" in true) noise_opt=--write_noise ;; false) noise_opt= ;; *) echo "$0: --use_noise_ref true|false, not '$use_noise_ref'" >&2; exit 1 ;; esac
for part in train valid test; do
  case $part in
    train) noise=noise_train; opts=(--num "$num_train" --length 2 --snrs "$train_snrs" --seed "$seed") ;;
    valid) noise=noise_train; opts=(--snrs "$test_snrs" --seed "$((seed + 1))") ;;
    test)  noise=noise_test;  opts=(--snrs "$test_snrs" --seed "$((seed + 2))") ;;
  esac
  tmp=$dump/.tmp.$part
  rm -rf "$tmp"
  csmvanet-simulate --audio_format "$audio_format" ${noise_opt} --make_spec --speech_scp "$data/speech_$part/wav.scp" \
    --speech_utt2spk "$data/speech_$part/utt2spk" \
    --noise_scp "$data/$noise/wav.scp" --noise2type "$data/$noise/utt2noise" \
    "${opts[@]}" --spec "$tmp/spec.tsv" \
    --out_wav_dir "$dump/audio/$part" --data_dir "$tmp" --nj "$nj" --quiet
  # VAD labels live beside the audio (the scp holds the ark's absolute path).
  csmvanet-vad-labels --scp "$tmp/spk1.scp" --out_dir "$dump/audio/$part/vad" --config "$vad_config" \
    --stft_config "$train_config" --nj "$nj" --quiet
  cp "$dump/audio/$part/vad/vad_labels.scp" "$dump/audio/$part/vad/frame_shift" "$tmp/"
  utils/validate_data_dir.sh "$tmp"
  rm -rf "${dump:?}/$part" && mv "$tmp" "$dump/$part"
done
