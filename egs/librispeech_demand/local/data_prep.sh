#!/usr/bin/env bash
# Stage 1 of the LibriSpeech+DEMAND recipe: speech lists per subset and noise lists per environment
# (logic and details in local/data_prep.py), then a check of each list.
#
#   local/data_prep.sh [--train_sets "train-clean-100"] [--test_noises "PCAFETER PSTATION NRIVER"]
#                      [--demand_channels "01"] <librispeech_root> <demand_root> <data_dir>
#
# Writes <data_dir>/speech_{train,dev,test}/ (wav.scp utt2spk spk2utt utt2num_samples text) and
# <data_dir>/noise_{train,test}/ (wav.scp noise2type utt2num_samples; keys <ENV>_ch<NN>). DEMAND
# channels not at --fs Hz (SCAFE is 48 kHz upstream) are resampled into <data_dir>/demand_<fs>/,
# as stage 0 does for its download; the log says which.
set -euo pipefail

train_sets=train-clean-100
test_noises="PCAFETER PSTATION NRIVER"
demand_channels=01
fs=16000
help_message="Usage: $0 [--train_sets \"train-clean-100\"] [--test_noises \"PCAFETER PSTATION NRIVER\"] [--demand_channels \"01\"] [--fs 16000] <librispeech_root> <demand_root> <data_dir>"
. utils/parse_options.sh
if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi

python3 "$(dirname "$0")/data_prep.py" --train_sets "$train_sets" --test_noises "$test_noises" \
  --channels "$demand_channels" --fs "$fs" "$1" "$2" "$3"
for x in speech_train speech_dev speech_test; do
  utils/validate_data_dir.sh --no-audio-check --require "wav.scp utt2spk spk2utt utt2num_samples" "$3/$x"
done
for x in noise_train noise_test; do
  utils/validate_data_dir.sh --fs "$fs" --require "wav.scp utt2num_samples" "$3/$x"
done
