#!/usr/bin/env bash
# Stage 1 of the VoiceBank+DEMAND recipe: data dirs from the official layout (logic in
# local/data_prep.py), then a validation of each.
#
#   local/data_prep.sh [--valid_speakers "p226 p287"] [--test_speakers "p232 p257"] <voicebank_root> <data_dir>
#
# Writes <data_dir>/{train,valid,test}/: wav.scp (noisy, 48 kHz corpus files), spk1.scp (clean),
# utt2spk, spk2utt, text, and utt2noise/utt2snr from the log files where present.
# train: 26 speakers (the 28 training speakers minus the validation speakers); valid: p226 + p287;
# test: p232 + p257 (824 utterances).
set -euo pipefail

valid_speakers="p226 p287"
test_speakers="p232 p257"
help_message="Usage: $0 [--valid_speakers \"p226 p287\"] [--test_speakers \"p232 p257\"] <voicebank_root> <data_dir>"
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
root=$1
data=$2

python3 "$(dirname "$0")/data_prep.py" --valid_speakers "$valid_speakers" --test_speakers "$test_speakers" \
  "$root" "$data"
for x in train valid test; do
  utils/validate_data_dir.sh --fs 48000 --require "wav.scp spk1.scp utt2spk spk2utt" "$data/$x"
done
