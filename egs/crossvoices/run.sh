#!/usr/bin/env bash
# egs/crossvoices: CSM-VANet on real speech and noise from Debian packages, with a cross-corpus split:
# validation and test are whole sources (volunteer languages, voice packs, noise packages) that training
# never sees; egs/voiceprompts' own test set is kept as a second, in-domain test. See README.md.
#
#   ./run.sh [--stage 0] [--stop_stage 2] [--nj 2] ...
#
#   0  apt-get download + dpkg-deb -x the 8 packages, decode to 16 kHz        local/download.sh     -> downloads/, corpus/
#   1  egs/voiceprompts' data prep (its test: test_indomain); clip quality; roles of conf/roles.tsv;
#      utterances of clean clips per role, noise per role                     local/data_prep.sh    -> data/{speech,noise}_<set>, data/quality.md, data/roles.md
#   2  simulate mixtures + VAD labels (train, valid, test, test_indomain)      steps/prepare_dump.sh -> dump/<set>
#   3  train                                                                  steps/train.sh        -> exp/<tag>/
#   4  choose vad_floor/VAD threshold on valid; enhance valid and the test sets  steps/decode.sh    -> exp/<tag>/enhanced_<set>/
#   5  score them                                                             steps/score_sets.sh   -> exp/<tag>/RESULTS.md
set -euo pipefail
if [ ! -e steps/recipe.sh ] || [ ! -e utils/parse_options.sh ]; then
  echo "$0: run this from its folder (egs/crossvoices): utils/ and steps/ must be here" >&2
  exit 1
fi
. steps/recipe.sh                 # the options every recipe has (./run.sh --help lists them all)

nj=2                              # parallel jobs: decoding, quality measures, simulation, VAD labels, scoring
ngpu=0                            # GPUs for training (0: CPU; N > 1: DDP through torchrun)
test_sets="test test_indomain"    # the cross-corpus test, then egs/voiceprompts' in-domain test
packages="tuxpaint-stamps-default hedgewars-data ktuberling-data asterisk-core-sounds-fr-g722 asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722 klettres-data colobot-common-sounds"  # stage 0 (reserved ones are refused)
check_sha256=true                 # false: accept .deb files of another Debian/Ubuntu release
downloads=downloads               # stage 0: the .deb files and their unpacked trees
corpus=corpus                     # stage 0: decoded 16 kHz clips and noise recordings
roles=conf/roles.tsv              # stage 1: the role (train/valid/test/test_indomain/unused) of every source unit
data_prep_args=""                 # more local/prepare_roles.py options (quality rule: --min_range_db 30 ...)
indomain_valid_langs="es pt nl"   # egs/voiceprompts' valid languages (its stage 1 is rerun here for its test)
indomain_test_langs="it de nds he tn"  # egs/voiceprompts' test languages: its test set is test_indomain here
vp_data_prep_args=""              # more egs/voiceprompts local/data_prep.py options
num_train=3000                    # training mixtures
train_seconds=2                   # their length in seconds
train_snrs=uniform:-5:25          # training SNRs in dB
test_snrs=-5,0,5,10,15            # valid/test SNRs in dB
seed=1                            # data prep and simulation seed (train: seed, valid: seed+1, test: seed+2)
train_config=conf/train.yaml      # csmvanet-train config (egs/voiceprompts' shipped one)
train_threads=1                   # stage 3 torch threads (empty: every core)
tune_args="--floors 0.3,0.5,0.7,1 --mixes 0,0.1,0.2 --snr_limits none,20,15 --keep_stoi --stoi_se 1 --segment_seconds 2 --overlap_seconds 0.25"  # csmvanet-tune-inference options of stage 4, on the cross-corpus valid set (egs/voiceprompts' rule)
compare_floors="1 0"              # stage 4/5: vad_floor values compared with the chosen one on the test sets

. ./path.sh
. ./cmd.sh
recipe_init "$@"
recipe_ints num_train seed nj
recipe_only_fs 16000                 # the clips are decoded to 16 kHz (--fs is refused otherwise)

if run_stage 0 "Debian packages -> $downloads, decoded -> $corpus"; then
  # shellcheck disable=SC2086
  recipe_run local/download.sh --check_sha256 "$check_sha256" --nj "$nj" "$downloads" "$corpus" $packages
fi

if run_stage 1 "data prep by roles ($roles) -> $datadir, audio -> $dumpdir/audio"; then
  # shellcheck disable=SC2086  # options of local/data_prep.sh
  recipe_run local/data_prep.sh $local_data_opts --roles "$roles" --seed "$seed" --nj "$nj" \
    --indomain_valid_langs "$indomain_valid_langs" --indomain_test_langs "$indomain_test_langs" \
    --vp_data_prep_args "$vp_data_prep_args" --data_prep_args "$data_prep_args" "$corpus" "$datadir" "$dumpdir/audio"
fi

if run_stage 2 "simulation and VAD labels -> $dumpdir"; then
  # each set: <set> <speech list> <noise list> <csmvanet-simulate options> (steps/prepare_dump.sh); the test
  # sets: every (noise type, SNR) pair equally often; test_indomain is built as egs/voiceprompts builds its test
  recipe_run steps/prepare_dump.sh "${stage2_opts[@]}" "$datadir" "$dumpdir" \
    "train speech_train noise_train --num $num_train --length $train_seconds --snrs $train_snrs --seed $seed" \
    "valid speech_valid noise_valid --snrs $test_snrs --seed $((seed + 1))" \
    "test speech_test noise_test --per_condition auto --snrs $test_snrs --seed $((seed + 2))" \
    "test_indomain speech_test_indomain noise_test_indomain --per_condition auto --snrs $test_snrs --seed $((seed + 2))"
fi

if run_stage 3 "train $exp on $dumpdir/$train_data with $train_config${train_args:+ (overrides: $train_args)}"; then
  recipe_run steps/train.sh "${stage3_opts[@]}" --num_threads "$train_threads" \
    "$train_config" "$dumpdir/$train_data" "$dumpdir/$valid_set" "$exp"
fi

if run_stage 4 "choose vad_floor and VAD threshold on $valid_set; compare vad_floor $compare_floors + chosen on $test_sets; enhance $valid_set $test_sets"; then
  # shellcheck disable=SC2086
  recipe_run steps/tune_inference.sh --cmd "$decode_cmd" --checkpoint "$inference_model" --tune_args "$tune_args" \
    --compare_floors "$compare_floors" "$dumpdir" "$exp" "$valid_set" $test_sets
  for x in $valid_set $test_sets; do
    recipe_run steps/decode.sh "${stage4_opts[@]}" "$dumpdir/$x" "$exp" "$exp/${inference_tag}_$x"
  done
fi

if run_stage 5 "score $test_sets $valid_set -> $exp/RESULTS.md (+ the vad_floor comparison); pack -> $exp/packed/model.pth"; then
  vad_opts=
  if [ -f "$exp/inference.yaml" ]; then   # VAD metrics at the threshold chosen on validation
    vad_opts="--vad_threshold $(awk '/^vad_threshold:/ { print $2 }' "$exp/inference.yaml")"
  fi
  # shellcheck disable=SC2086
  recipe_run steps/score_sets.sh "${stage5_opts[@]}" --score_opts "$vad_opts $score_opts" "$dumpdir" "$exp" $test_sets
  # shellcheck disable=SC2086
  recipe_run steps/pack_model.sh --checkpoint "$inference_model" --valid_set "$valid_set" "$exp" $test_sets
fi
log "Done (stages $stage-$stop_stage)"
