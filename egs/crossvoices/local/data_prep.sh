#!/usr/bin/env bash
# Stage 1 of egs/crossvoices: egs/voiceprompts' stage 1 on its own packages (for its in-domain test set),
# then the clip quality check and the cross-corpus roles (local/prepare_roles.py), then a check of each
# data dir.
#
#   local/data_prep.sh [--roles conf/roles.tsv] [--seed 1] [--nj 2] [--data_prep_args "..."] \
#       [--indomain_valid_langs "es pt nl"] [--indomain_test_langs "it de nds he tn"] [--vp_data_prep_args "..."] \
#       <corpus> <data> <audio>
#
# Writes <data>/voiceprompts/ (egs/voiceprompts' data dirs, from a view of <corpus> that holds only its
# packages), <data>/{speech,noise}_{train,valid,test,test_indomain}/, <data>/quality.{tsv,md},
# <data>/roles.md; the audio under <audio>/.
set -euo pipefail

roles=conf/roles.tsv
seed=1
nj=2
data_prep_args=""       # more local/prepare_roles.py options, e.g. "--min_range_db 25"
indomain_valid_langs="es pt nl"       # egs/voiceprompts' --valid_langs
indomain_test_langs="it de nds he tn" # egs/voiceprompts' --test_langs: its test set is test_indomain here
vp_data_prep_args=""    # more egs/voiceprompts local/data_prep.py options
help_message="Usage: $0 [--roles conf/roles.tsv] [--seed 1] [--nj 2] [--data_prep_args \"...\"] [--indomain_valid_langs \"es pt nl\"] [--indomain_test_langs \"it de nds he tn\"] [--vp_data_prep_args \"...\"] <corpus> <data> <audio>"
. utils/parse_options.sh
if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
corpus=$1
data=$2
audio=$3
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$roles" ] || { echo "$0: no such file: $roles" >&2; exit 1; }
[ -d "$corpus/speech" ] || { echo "$0: $corpus/speech: no such folder (run stage 0)" >&2; exit 1; }

# egs/voiceprompts sees only its own speakers and noise (its data prep takes every speaker it finds)
view=$data/voiceprompts/corpus
rm -rf "$view"
mkdir -p "$view/speech" "$view/noise"
corpus_abs=$(cd "$corpus" && pwd)
for d in "$corpus_abs"/speech/ast-* "$corpus_abs"/speech/klt-*; do
  [ -d "$d" ] && ln -s "$d" "$view/speech/"
done
[ -d "$corpus_abs/noise/colobot-common-sounds" ] && ln -s "$corpus_abs/noise/colobot-common-sounds" "$view/noise/"
# shellcheck disable=SC2086
python3 "$here/../../voiceprompts/local/data_prep.py" --seed "$seed" --valid_langs "$indomain_valid_langs" \
  --test_langs "$indomain_test_langs" $vp_data_prep_args \
  "$view" "$data/voiceprompts" "$audio/voiceprompts" > "$data/voiceprompts/log" || {
  echo "$0: egs/voiceprompts' data prep failed (see $data/voiceprompts/log)" >&2; exit 1; }

# shellcheck disable=SC2086
python3 "$here/prepare_roles.py" --roles "$roles" --indomain "$data/voiceprompts" --seed "$seed" --nj "$nj" \
  $data_prep_args "$corpus" "$data" "$audio"
for part in train valid test test_indomain; do
  utils/validate_data_dir.sh --fs 16000 --require "wav.scp utt2spk spk2utt utt2num_samples" "$data/speech_$part"
  utils/validate_data_dir.sh --fs 16000 --require "wav.scp utt2noise utt2num_samples" "$data/noise_$part"
done
