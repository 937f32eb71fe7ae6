#!/usr/bin/env bash
# egs/voiceprompts: CSM-VANet on real speech and real noise that Debian packages carry (no corpus
# download from a research site; needs apt-get, dpkg-deb and ffmpeg for stage 0). See README.md.
#
#   ./run.sh [--stage 0] [--stop_stage 5] [--nj 2] [--train_args "--train.epochs 2"] ...
#
#   0  apt-get download + dpkg-deb -x the 5 packages, decode to 16 kHz          local/download.sh     -> downloads/, corpus/
#   1  data prep: utterances of several prompts with pauses, split by language/speaker;
#      noise lists split by recording (+ babble, coloured noise)                local/data_prep.sh    -> data/{speech,noise}_<set>, dump/audio/{speech,noise}_<set>
#   2  simulate mixtures (train 2 s clips, valid/test whole utterances) + VAD labels  steps/prepare_dump.sh -> dump/<set>, dump/audio/<set>
#   3  train                                                                     steps/train.sh        -> exp/<tag>/
#   4  choose vad_floor and the VAD threshold on valid (csmvanet-tune-inference -> exp/<tag>/inference.yaml),
#      enhance valid and test with them; compare floors 1, 0 and the chosen one on test   steps/decode.sh -> exp/<tag>/enhanced_<set>/, floors_<set>.md
#   5  score them; pack the model with its settings and scores                   steps/score_sets.sh   -> exp/<tag>/RESULTS.md, exp/<tag>/packed/model.pth
set -euo pipefail
if [ ! -e steps/recipe.sh ] || [ ! -e utils/parse_options.sh ]; then
  echo "$0: run this from its folder (egs/voiceprompts): utils/ and steps/ must be here" >&2
  exit 1
fi
. steps/recipe.sh                 # the options every recipe has (./run.sh --help lists them all)

nj=2                              # parallel jobs: decoding, simulation, VAD labels, enhancement, scoring
ngpu=0                            # GPUs for training (0: CPU; N > 1: DDP through torchrun)
packages="asterisk-core-sounds-fr-g722 asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722 klettres-data colobot-common-sounds"  # the Debian packages of stage 0 (only these five are allowed)
check_sha256=true                 # false: accept .deb files of another Debian/Ubuntu release
downloads=downloads               # stage 0: the .deb files and their unpacked trees
corpus=corpus                     # stage 0: decoded 16 kHz prompts and noise recordings
valid_langs="es pt nl"            # held-out languages (and so speakers) of the validation set
test_langs="it de nds he tn"      # held-out languages of the test set
data_prep_args=""                 # more local/data_prep.py options, e.g. "--babble_count 2"
num_train=3000                    # training mixtures
train_seconds=2                   # their length in seconds
train_snrs=uniform:-5:25          # training SNRs in dB
test_snrs=-5,0,5,10,15            # valid/test SNRs in dB: valid draws one per utterance; test has every (noise type, SNR) pair equally often
seed=1                            # data prep and simulation seed (train: seed, valid: seed+1, test: seed+2)
train_config=conf/train.yaml      # csmvanet-train config (the shipped model's; alternatives in conf/tuning/)
train_threads=1                   # stage 3 torch threads (empty: every core); 1 rebuilds the shipped model bit for bit (same torch build)
tune_args="--floors 0.3,0.5,0.7,1 --mixes 0,0.1,0.2 --snr_limits none,20,15 --keep_stoi --stoi_se 1 --segment_seconds 2 --overlap_seconds 0.25"  # csmvanet-tune-inference options of stage 4 (see README.md)
compare_floors="1 0"              # stage 4/5: vad_floor values compared with the chosen one on the test sets (input_mix 0 and the chosen one)

. ./path.sh
. ./cmd.sh
recipe_init "$@"
recipe_ints num_train seed
recipe_only_fs 16000                 # the prompts are decoded to 16 kHz (--fs is refused otherwise)

if run_stage 0 "Debian packages -> $downloads, decoded -> $corpus"; then
  # shellcheck disable=SC2086
  recipe_run local/download.sh --check_sha256 "$check_sha256" --nj "$nj" "$downloads" "$corpus" $packages
fi

if run_stage 1 "data prep -> $datadir, audio -> $dumpdir/audio (valid languages: $valid_langs; test languages: $test_langs)"; then
  # shellcheck disable=SC2086  # options of local/data_prep.sh
  recipe_run local/data_prep.sh $local_data_opts --valid_langs "$valid_langs" --test_langs "$test_langs" --seed "$seed" \
    --data_prep_args "$data_prep_args" "$corpus" "$datadir" "$dumpdir/audio"
fi

if run_stage 2 "simulation and VAD labels -> $dumpdir"; then
  # each set: <set> <speech list> <noise list> <csmvanet-simulate options> (steps/prepare_dump.sh); test:
  # every (noise type, SNR) pair equally often, as many per pair as the test utterances allow
  recipe_run steps/prepare_dump.sh "${stage2_opts[@]}" "$datadir" "$dumpdir" \
    "train speech_train noise_train --num $num_train --length $train_seconds --snrs $train_snrs --seed $seed" \
    "valid speech_valid noise_valid --snrs $test_snrs --seed $((seed + 1))" \
    "test speech_test noise_test --per_condition auto --snrs $test_snrs --seed $((seed + 2))"
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
