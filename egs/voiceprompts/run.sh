#!/usr/bin/env bash
# egs/voiceprompts: CSM-VANet on real speech and real noise that Debian packages carry (no corpus
# download from a research site; needs apt-get, dpkg-deb and ffmpeg for stage 0). See README.md.
#
#   ./run.sh [--stage 0] [--stop_stage 5] [--nj 2] [--train_args "--train.epochs 2"] ...
#
#   0  apt-get download + dpkg-deb -x the 5 packages, decode to 16 kHz          local/download.sh     -> downloads/, corpus/
#   1  data prep: utterances of several prompts with pauses, split by language/speaker;
#      noise lists split by recording (+ babble, coloured noise)                local/data_prep.sh    -> data/{speech,noise}_<set>, dump/audio/{speech,noise}_<set>
#   2  simulate mixtures (train 2 s clips, valid/test whole utterances) + VAD labels  local/prepare_dump.sh -> dump/<set>, dump/audio/<set>
#   3  train                                                                     steps/train.sh        -> exp/<tag>/
#   4  enhance the valid and test sets                                           steps/decode.sh       -> exp/<tag>/enhanced_<set>/
#   5  score them                                                                steps/score_sets.sh   -> exp/<tag>/RESULTS.md
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
train_snrs=uniform:-5:15          # training SNRs in dB
test_snrs=-5,0,5,10,15            # valid/test SNRs in dB: valid draws one per utterance; test has every (noise type, SNR) pair equally often
seed=1                            # data prep and simulation seed (train: seed, valid: seed+1, test: seed+2)
train_config=conf/train.yaml      # csmvanet-train config (egs/mini's small CSM-VANet, untuned)
vad_config=conf/vad.yaml          # VAD label settings (csmvanet.vad.VADLabelConfig)

. ./path.sh
. ./cmd.sh
recipe_init "$@"

if run_stage 0 "Debian packages -> $downloads, decoded -> $corpus"; then
  # shellcheck disable=SC2086
  local/download.sh --check_sha256 "$check_sha256" --nj "$nj" "$downloads" "$corpus" $packages
fi

if run_stage 1 "data prep -> $datadir, audio -> $dumpdir/audio (valid languages: $valid_langs; test languages: $test_langs)"; then
  local/data_prep.sh --valid_langs "$valid_langs" --test_langs "$test_langs" --seed "$seed" \
    --data_prep_args "$data_prep_args" "$corpus" "$datadir" "$dumpdir/audio"
fi

if run_stage 2 "simulation and VAD labels -> $dumpdir"; then
  local/prepare_dump.sh --nj "$nj" --train_config "$train_config" --vad_config "$vad_config" \
    --num_train "$num_train" --train_seconds "$train_seconds" --train_snrs "$train_snrs" \
    --test_snrs "$test_snrs" --seed "$seed" "$datadir" "$dumpdir"
fi

if run_stage 3 "train $exp with $train_config${train_args:+ (overrides: $train_args)}"; then
  steps/train.sh --cmd "$train_job_cmd" --ngpu "$ngpu" --train_args "$train_args" \
    "$train_config" "$dumpdir/$train_set" "$dumpdir/$valid_set" "$exp"
fi

if run_stage 4 "enhance $valid_set $test_sets with $exp/$inference_model -> $exp/enhanced_<set>"; then
  for x in $valid_set $test_sets; do
    steps/decode.sh --nj "$inference_nj" --cmd "$inference_cmd" --use_gpu "$gpu_inference" \
      --model "$inference_model" --enhance_args "$enhance_args" "$dumpdir/$x" "$exp" "$exp/enhanced_$x"
  done
fi

if run_stage 5 "score $test_sets $valid_set -> $exp/RESULTS.md"; then
  steps/score_sets.sh --nj "$nj" --cmd "$decode_cmd" --title "$tag" \
    --score_opts "$score_opts" --valid_set "$valid_set" "$dumpdir" "$exp" $test_sets
fi
log "Done (stages $stage-$stop_stage)"
