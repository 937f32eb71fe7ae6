#!/usr/bin/env bash
# Stage 2 of the VoiceBank+DEMAND recipe: the 48 kHz data dirs of stage 1 resampled to --fs (soxr,
# csmvanet-resample) into <dump_dir>/<set>/wav/{noisy,clean}/, with utt2num_samples, the other
# per-utterance files copied, and VAD labels from the clean speech (csmvanet-vad-labels: the frames
# of the training config's stft: section, the settings of --vad_config); then each set is validated.
#
#   local/prepare_dump.sh [--nj 8] [--cmd utils/run.pl] [--fs 16000] [--train_config conf/train.yaml]
#                         [--vad_config conf/vad.yaml] [--sets "train valid test"] <data_dir> <dump_dir>
set -euo pipefail

nj=8
cmd=utils/run.pl
fs=16000
train_config=conf/train.yaml
vad_config=conf/vad.yaml
sets="train valid test"
audio_format=wav      # wav or flac
help_message="Usage: $0 [--audio_format wav] [--nj 8] [--cmd utils/run.pl] [--fs 16000] [--train_config conf/train.yaml] [--vad_config conf/vad.yaml] [--sets \"train valid test\"] <data_dir> <dump_dir>"
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
dump=$2
case "$nj" in ''|*[!0-9]*|0) echo "$0: --nj must be a positive number, not '$nj'" >&2; exit 1 ;; esac
for f in "$train_config" "$vad_config"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done
for x in $sets; do
  [ -f "$data/$x/wav.scp" ] || { echo "$0: no such file: $data/$x/wav.scp (run stage 1)" >&2; exit 1; }
done

for x in $sets; do
  src=$data/$x
  dst=$dump/$x
  mkdir -p "$dst/log"
  $cmd --num-threads "$nj" "$dst/log/resample_noisy.log" \
    csmvanet-resample --quiet --audio_format "$audio_format" --nj "$nj" --fs "$fs" --scp "$src/wav.scp" --out_dir "$dst/wav/noisy" \
      --out_scp "$dst/wav.scp" --utt2num_samples "$dst/utt2num_samples"
  $cmd --num-threads "$nj" "$dst/log/resample_clean.log" \
    csmvanet-resample --quiet --audio_format "$audio_format" --nj "$nj" --fs "$fs" --scp "$src/spk1.scp" --out_dir "$dst/wav/clean" \
      --out_scp "$dst/spk1.scp"
  for f in utt2spk spk2utt text utt2noise utt2snr; do
    rm -f "$dst/$f"
    if [ -f "$src/$f" ]; then cp "$src/$f" "$dst/$f"; fi
  done
  $cmd --num-threads "$nj" "$dst/log/vad_labels.log" \
    csmvanet-vad-labels --quiet --nj "$nj" --config "$vad_config" --stft_config "$train_config" \
      --scp "$dst/spk1.scp" --out_dir "$dst"
  utils/validate_data_dir.sh --fs "$fs" --stft-config "$train_config" \
    --require "wav.scp spk1.scp utt2spk spk2utt utt2num_samples vad_labels.scp frame_shift" "$dst"
done
