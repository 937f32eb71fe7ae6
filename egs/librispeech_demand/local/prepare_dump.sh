#!/usr/bin/env bash
# Stage 2 of the LibriSpeech+DEMAND recipe: for each set, the mixture list (readable, tab-separated:
# speech, noise, offsets, length, SNR, gain; csmvanet-simulate --make_spec), the mixtures
# <dump_dir>/<set>/wav/{noisy,clean}/<utt>.wav with their data dir <dump_dir>/<set> (utt2noise,
# utt2snr, ...), VAD labels from the clean speech (frames of the training config's stft: section,
# settings of --vad_config), then a validation of each set.
#   train: speech_train x noise_train, --num_train clips of --train_seconds s, SNR --train_snrs, seed
#   valid: speech_dev x noise_train, --num_valid clips of --train_seconds s, SNR --train_snrs, seed+1
#   test:  speech_test x noise_test, --num_test_per_cond per noise and SNR of --test_snrs, seed+2
#
#   local/prepare_dump.sh [options] <data_dir> <dump_dir>      (options: see the variables below)
set -euo pipefail

nj=8
cmd=utils/run.pl
fs=16000
train_config=conf/train.yaml
vad_config=conf/vad.yaml
num_train=200000
train_seconds=2
train_snrs=uniform:-10:15
num_valid=1000
test_snrs=-5,0,5,10,15
num_test_per_cond=50
test_seconds=0
seed=1
use_noise_ref=false   # also write the scaled noise of each mixture (noise1.scp, ESPnet's noise reference)
audio_format=wav      # wav or flac
help_message="Usage: $0 [--use_noise_ref false] [--audio_format wav] [--nj 8] [--cmd utils/run.pl] [--fs 16000] [--train_config F] [--vad_config F] [--num_train N] [--train_seconds S] [--train_snrs SPEC] [--num_valid N] [--test_snrs LIST] [--num_test_per_cond N] [--test_seconds S] [--seed N] <data_dir> <dump_dir>"
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
dump=$2
for v in nj num_train num_valid num_test_per_cond seed; do
  case "${!v}" in ''|*[!0-9]*) echo "$0: --$v must be a number, not '${!v}'" >&2; exit 1 ;; esac
done
for f in "$train_config" "$vad_config"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done
for x in speech_train speech_dev speech_test noise_train noise_test; do
  [ -f "$data/$x/wav.scp" ] || { echo "$0: no such file: $data/$x/wav.scp (run stage 1)" >&2; exit 1; }
done

case "$use_noise_ref" in true) noise_opt=--write_noise ;; false) noise_opt= ;; *) echo "$0: --use_noise_ref true|false, not '$use_noise_ref'" >&2; exit 1 ;; esac
# set | speech list | noise list | SNRs | how many | clip length (s) | seed
for spec in "train speech_train noise_train $train_snrs --num=$num_train $train_seconds $seed" \
            "valid speech_dev noise_train $train_snrs --num=$num_valid $train_seconds $((seed + 1))" \
            "test speech_test noise_test $test_snrs --per_condition=$num_test_per_cond $test_seconds $((seed + 2))"; do
  read -r x speech noise snrs count seconds s <<< "$spec"
  dst=$dump/$x
  mkdir -p "$dst/log"
  $cmd --num-threads "$nj" "$dst/log/simulate.log" \
    csmvanet-simulate --audio_format "$audio_format" ${noise_opt} --quiet --fs "$fs" --make_spec --spec "$dst/spec.tsv" --seed "$s" \
      --speech_scp "$data/$speech/wav.scp" --speech_lengths "$data/$speech/utt2num_samples" \
      --speech_utt2spk "$data/$speech/utt2spk" \
      --noise_scp "$data/$noise/wav.scp" --noise_lengths "$data/$noise/utt2num_samples" \
      --noise2type "$data/$noise/noise2type" \
      --snrs="$snrs" "$count" --length "$seconds" \
      --data_dir "$dst" --out_wav_dir "$dst/wav" --nj "$nj"
  $cmd --num-threads "$nj" "$dst/log/vad_labels.log" \
    csmvanet-vad-labels --quiet --nj "$nj" --config "$vad_config" --stft_config "$train_config" \
      --scp "$dst/spk1.scp" --out_dir "$dst"
  utils/validate_data_dir.sh --fs "$fs" --stft-config "$train_config" \
    --require "wav.scp spk1.scp utt2spk spk2utt utt2num_samples utt2noise utt2snr vad_labels.scp frame_shift" "$dst"
done
