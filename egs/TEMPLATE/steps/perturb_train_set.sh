#!/usr/bin/env bash
# The training set as ESPnet's enh.sh makes it (its stages 2 and 4): speed-perturbed copies of every
# utterance (--speed_perturb_factors "0.9 1.0 1.1": keys sp0.9-<utt>, sp1.1-<utt>, factor 1 the
# originals; mixture, clean speech and noise1.scp resampled alike, with soxr: no sox needed) and a
# length filter (--min_wav_duration/--max_wav_duration in seconds: min x fs < samples < max x fs),
# then VAD labels of the new clean speech and a validation. csmvanet-perturb does the audio.
#
#   steps/perturb_train_set.sh [--nj 4] [--fs 16000] [--speed_perturb_factors "0.9 1.0 1.1"]
#     [--min_wav_duration S] [--max_wav_duration S] [--audio_format wav|flac]
#     [--train_config conf/train.yaml] [--vad_config conf/vad.yaml] <src-data-dir> <dst-data-dir>
#
# The audio of the copies goes to <dir of dst>/audio/<name of dst>/. The data dir is built under a
# temporary name and renamed once it validates.
set -euo pipefail

nj=4
fs=16000
speed_perturb_factors=1.0
min_wav_duration=
max_wav_duration=
audio_format=wav
train_config=conf/train.yaml
vad_config=conf/vad.yaml
help_message="Usage: $0 [--nj 4] [--fs 16000] [--speed_perturb_factors \"0.9 1.0 1.1\"] [--min_wav_duration S] [--max_wav_duration S] [--audio_format wav|flac] [--train_config F] [--vad_config F] <src-data-dir> <dst-data-dir>"
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
src=$1
dst=$2
for f in "$src/wav.scp" "$src/spk1.scp" "$train_config" "$vad_config"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done
[ "$(realpath -m "$src")" != "$(realpath -m "$dst")" ] || { echo "$0: source and destination are the same: $src" >&2; exit 1; }

tmp=$(dirname "$dst")/.tmp.$(basename "$dst")
audio=$(dirname "$dst")/audio/$(basename "$dst")
rm -rf "$tmp"
python3 -m csmvanet.bin.perturb --src "$src" --dst "$tmp" --audio_dir "$audio" --fs "$fs" --nj "$nj" \
  --speed_perturb_factors "$speed_perturb_factors" --audio_format "$audio_format" \
  ${min_wav_duration:+--min_wav_duration "$min_wav_duration"} ${max_wav_duration:+--max_wav_duration "$max_wav_duration"}
csmvanet-vad-labels --quiet --nj "$nj" --config "$vad_config" --stft_config "$train_config" \
  --scp "$tmp/spk1.scp" --out_dir "$audio/vad"
cp "$audio/vad/vad_labels.scp" "$audio/vad/frame_shift" "$tmp/"
utils/validate_data_dir.sh --fs "$fs" --stft-config "$train_config" --require "wav.scp spk1.scp utt2num_samples vad_labels.scp" "$tmp"
rm -rf "$dst" && mv "$tmp" "$dst"
echo "$0: wrote $dst ($(wc -l < "$dst/wav.scp") utterances from $(wc -l < "$src/wav.scp") of $src)"
