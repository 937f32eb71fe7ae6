#!/usr/bin/env bash
# Stage 2 of egs/voiceprompts: mixtures and VAD labels (csmvanet-simulate, csmvanet-vad-labels) from
# the speech and noise lists of stage 1 (<data_dir>/speech_<set>, <data_dir>/noise_<set>).
#   train: --num_train clips of --train_seconds s of the training speakers and noises, SNR drawn from
#          --train_snrs (seed)
#   valid: every validation utterance once, whole, with validation noises, SNR drawn from --test_snrs
#          (seed + 1)
#   test:  whole test utterances with test noises, every (noise type, SNR of --test_snrs) pair equally
#          often: as many per pair as the test utterances allow, each utterance at most once
#          (csmvanet-simulate --per_condition; seed + 2)
# Writes the data dirs <dump_dir>/{train,valid,test} (spec.tsv, mixtures.tsv, wav.scp, spk1.scp,
# utt2spk, spk2utt, utt2noise, utt2snr, utt2num_samples, vad_labels.scp, frame_shift); the audio and VAD
# arks go to <dump_dir>/audio/<set>/ (beside stage 1's <dump_dir>/audio/{speech,noise}_<set>/). Each data
# dir is built under a temporary name and renamed once it validates, so a killed run leaves nothing a
# later stage would trust (the audio is written atomically file by file and is the same on every run:
# the simulation is a pure function of the spec and the seed).
#
#   local/prepare_dump.sh [--nj 2] [--train_config conf/train.yaml] [--vad_config conf/vad.yaml]
#     [--num_train 3000] [--train_seconds 2] [--train_snrs uniform:-5:25] [--test_snrs -5,0,5,10,15]
#     [--seed 1] <data_dir> <dump_dir>
set -euo pipefail

nj=2
train_config=conf/train.yaml
vad_config=conf/vad.yaml
num_train=3000
train_seconds=2
train_snrs=uniform:-5:25
test_snrs=-5,0,5,10,15
seed=1
use_noise_ref=false   # also write the scaled noise of each mixture (noise1.scp, ESPnet's noise reference)
audio_format=wav      # wav or flac
help_message="Usage: $0 [--use_noise_ref false] [--audio_format wav] [--nj 2] [--train_config F] [--vad_config F] [--num_train 3000] [--train_seconds 2] [--train_snrs SPEC] [--test_snrs LIST] [--seed 1] <data_dir> <dump_dir>"
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
for f in "$train_config" "$vad_config"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done
for part in train valid test; do
  for f in "$data/speech_$part/wav.scp" "$data/speech_$part/utt2num_samples" "$data/noise_$part/wav.scp" \
           "$data/noise_$part/utt2noise" "$data/noise_$part/utt2num_samples"; do
    [ -f "$f" ] || { echo "$0: no such file: $f (run stage 1)" >&2; exit 1; }
  done
done

case "$use_noise_ref" in true) noise_opt=--write_noise ;; false) noise_opt= ;; *) echo "$0: --use_noise_ref true|false, not '$use_noise_ref'" >&2; exit 1 ;; esac
for part in train valid test; do
  case $part in
    train) opts=(--num "$num_train" --length "$train_seconds" --snrs "$train_snrs" --seed "$seed") ;;
    valid) opts=(--snrs "$test_snrs" --seed "$((seed + 1))") ;;
    test)
      n_utts=$(wc -l < "$data/speech_test/wav.scp")
      n_types=$(cut -d' ' -f2 "$data/noise_test/utt2noise" | sort -u | wc -l)
      n_snrs=$(echo "$test_snrs" | tr ',' '\n' | grep -c .)
      per=$(( n_utts / (n_types * n_snrs) ))
      [ "$per" -ge 1 ] || per=1
      opts=(--per_condition "$per" --snrs "$test_snrs" --seed "$((seed + 2))") ;;
  esac
  tmp=$dump/.tmp.$part
  rm -rf "$tmp"
  csmvanet-simulate --audio_format "$audio_format" ${noise_opt} --make_spec --speech_scp "$data/speech_$part/wav.scp" \
    --speech_utt2spk "$data/speech_$part/utt2spk" --speech_lengths "$data/speech_$part/utt2num_samples" \
    --noise_scp "$data/noise_$part/wav.scp" --noise2type "$data/noise_$part/utt2noise" \
    --noise_lengths "$data/noise_$part/utt2num_samples" \
    "${opts[@]}" --spec "$tmp/spec.tsv" \
    --out_wav_dir "$dump/audio/$part" --data_dir "$tmp" --nj "$nj" --quiet
  # VAD labels live beside the audio (the scp holds the ark's absolute path).
  csmvanet-vad-labels --scp "$tmp/spk1.scp" --out_dir "$dump/audio/$part/vad" --config "$vad_config" \
    --stft_config "$train_config" --nj "$nj" --quiet
  cp "$dump/audio/$part/vad/vad_labels.scp" "$dump/audio/$part/vad/frame_shift" "$tmp/"
  utils/validate_data_dir.sh --fs 16000 --stft-config "$train_config" \
    --require "wav.scp spk1.scp utt2spk spk2utt utt2num_samples utt2noise utt2snr vad_labels.scp frame_shift" "$tmp"
  rm -rf "${dump:?}/$part" && mv "$tmp" "$dump/$part"
done
