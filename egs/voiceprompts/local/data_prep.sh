#!/usr/bin/env bash
# Stage 1 of egs/voiceprompts: composed utterances and noise lists (logic in local/data_prep.py), then a
# validation of each data dir.
#
#   local/data_prep.sh [--valid_langs "es pt nl"] [--test_langs "it de nds he tn"] [--seed 1] \
#       [--data_prep_args "..."] <corpus> <data> <audio>
#
# Writes <data>/speech_{train,valid,test}/ (wav.scp utt2spk spk2utt utt2lang utt2prompts
# utt2num_samples), <data>/noise_{train,valid,test}/ (wav.scp utt2noise utt2sources utt2num_samples),
# <data>/splits.md, and the audio they list under <audio>/{speech,noise}_{train,valid,test}/ (run.sh:
# dump/audio, beside stage 2's dump/audio/<set>).
set -euo pipefail

valid_langs="es pt nl"
test_langs="it de nds he tn"
seed=1
data_prep_args=""     # more local/data_prep.py options, e.g. "--babble_count 2 --level -30:-20"
help_message="Usage: $0 [--valid_langs \"es pt nl\"] [--test_langs \"it de nds he tn\"] [--seed 1] [--data_prep_args \"...\"] <corpus> <data> <audio>"
. utils/parse_options.sh
if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
corpus=$1
data=$2
audio=$3

# shellcheck disable=SC2086
python3 "$(dirname "$0")/data_prep.py" --valid_langs "$valid_langs" --test_langs "$test_langs" --seed "$seed" \
  $data_prep_args "$corpus" "$data" "$audio"
for part in train valid test; do
  utils/validate_data_dir.sh --fs 16000 --require "wav.scp utt2spk spk2utt utt2num_samples" "$data/speech_$part"
  utils/validate_data_dir.sh --fs 16000 --require "wav.scp utt2noise utt2num_samples" "$data/noise_$part"
done
