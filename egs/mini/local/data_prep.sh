#!/usr/bin/env bash
# Stage 1 of egs/mini: lists of the embedded corpus, Kaldi style.
#   local/data_prep.sh <corpus> <data>
# writes <data>/speech_{train,valid,test}/{wav.scp,utt2spk,spk2utt} (clean speech by speaker split)
# and <data>/noise_{train,test}/{wav.scp,utt2noise,utt2spk,spk2utt} (independent noise recordings per
# type; each recording its own "speaker", so that these lists are data dirs Kaldi's validator accepts).
set -euo pipefail
help_message="Usage: $0 <corpus> <data>"
. utils/parse_options.sh   # no options of its own: run.sh --local_data_opts gets a clear refusal
[ $# -eq 2 ] || { echo "Usage: $0 <corpus> <data>" >&2; exit 1; }
corpus=$(cd "$1" && pwd)
data=$2
[ -f "$corpus/.done" ] || { echo "$0: $corpus is not a complete corpus (run stage 0)" >&2; exit 1; }

# Each list folder is built under a temporary name and renamed when complete, so a killed run
# leaves no half-written list that a later stage would trust.
finish() { rm -rf "$2"; mv "$1" "$2"; }

declare -A speakers=([train]="s01 s02 s03 s04 s05 s06" [valid]="s07" [test]="s08 s09")
for part in train valid test; do
  dir=$data/.tmp.speech_$part
  rm -rf "$dir" && mkdir -p "$dir"
  for spk in ${speakers[$part]}; do
    for f in "$corpus"/speech/$spk/*.wav; do
      echo "$(basename "$f" .wav) $f"
    done
  done | sort > "$dir/wav.scp"
  awk '{split($1, a, "_"); print $1, a[1]}' "$dir/wav.scp" > "$dir/utt2spk"
  utils/utt2spk_to_spk2utt.pl "$dir/utt2spk" > "$dir/spk2utt"
  finish "$dir" "$data/speech_$part"
done
for part in train test; do
  dir=$data/.tmp.noise_$part
  rm -rf "$dir" && mkdir -p "$dir"
  for f in "$corpus"/noise/$part/*.wav; do
    kind=$(basename "$f" .wav)
    echo "${kind}_$part $f"
  done | sort > "$dir/wav.scp"
  awk '{n=$1; sub(/_(train|test)$/, "", n); print $1, n}' "$dir/wav.scp" > "$dir/utt2noise"
  awk '{print $1, $1}' "$dir/wav.scp" > "$dir/utt2spk"
  cp "$dir/utt2spk" "$dir/spk2utt"
  finish "$dir" "$data/noise_$part"
done
echo "$0: $(wc -l < "$data/speech_train/wav.scp") train, $(wc -l < "$data/speech_valid/wav.scp") valid," \
  "$(wc -l < "$data/speech_test/wav.scp") test utterances; $(wc -l < "$data/noise_train/wav.scp") noise types"
