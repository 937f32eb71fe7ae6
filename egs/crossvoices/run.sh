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
#   2  simulate mixtures + VAD labels (train/valid/test; then test_indomain)   local/prepare_dump.sh -> dump/<set>
#   3  train                                                                  steps/train.sh        -> exp/<tag>/
#   4  enhance valid and the test sets                                        steps/decode.sh       -> exp/<tag>/enhanced_<set>/
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
vad_config=conf/vad.yaml          # VAD label settings (csmvanet.data.vad.VADLabelConfig)

. ./path.sh
. ./cmd.sh
recipe_init "$@"
[ "$fs" -eq 16000 ] || recipe_die "--fs $fs: this recipe's corpus is 16 kHz (16000 only)"

if run_stage 0 "Debian packages -> $downloads, decoded -> $corpus"; then
  # shellcheck disable=SC2086
  local/download.sh --check_sha256 "$check_sha256" --nj "$nj" "$downloads" "$corpus" $packages
fi

if run_stage 1 "data prep by roles ($roles) -> $datadir, audio -> $dumpdir/audio"; then
  # shellcheck disable=SC2086  # options of local/data_prep.sh
  local/data_prep.sh $local_data_opts --roles "$roles" --seed "$seed" --nj "$nj" \
    --indomain_valid_langs "$indomain_valid_langs" --indomain_test_langs "$indomain_test_langs" \
    --vp_data_prep_args "$vp_data_prep_args" --data_prep_args "$data_prep_args" "$corpus" "$datadir" "$dumpdir/audio"
fi

if run_stage 2 "simulation and VAD labels -> $dumpdir"; then
  dump_opts=(--nj "$nj" --train_config "$train_config" --vad_config "$vad_config" --test_snrs "$test_snrs"
             --use_noise_ref "$use_noise_ref" --audio_format "$audio_format")
  local/prepare_dump.sh "${dump_opts[@]}" --num_train "$num_train" --train_seconds "$train_seconds" \
    --train_snrs "$train_snrs" --seed "$seed" "$datadir" "$dumpdir"
  # test_indomain: egs/voiceprompts' local/prepare_dump.sh makes train, valid and test only, so it runs
  # once more on a view whose lists are all the in-domain test lists; its "test" (seed + 2, every noise
  # type and SNR equally often, as egs/voiceprompts builds its test) becomes dump/test_indomain.
  view=$datadir/.test_indomain
  rm -rf "$view" && mkdir -p "$view"
  for kind in speech noise; do
    for part in train valid test; do ln -s "../${kind}_test_indomain" "$view/${kind}_$part"; done
  done
  local/prepare_dump.sh "${dump_opts[@]}" --num_train 1 --train_seconds 1 --seed "$seed" "$view" "$dumpdir/.test_indomain"
  rm -rf "${dumpdir:?}/test_indomain" && ln -s .test_indomain/test "$dumpdir/test_indomain"
  if [ "$train_data" != "$train_set" ]; then   # ESPnet's speed perturbation / length filter -> $dumpdir/$train_data
    steps/perturb_train_set.sh --nj "$nj" --fs "$fs" --speed_perturb_factors "${speed_perturb_factors:-1.0}" \
      --min_wav_duration "$min_wav_duration" --max_wav_duration "$max_wav_duration" --audio_format "$audio_format" \
      --train_config "$train_config" --vad_config "$vad_config" "$dumpdir/$train_set" "$dumpdir/$train_data"
  fi
fi

if run_stage 3 "train $exp on $dumpdir/$train_data with $train_config${train_args:+ (overrides: $train_args)}"; then
  steps/train.sh --cmd "$train_job_cmd" --ngpu "$ngpu" --num_nodes "$num_nodes" --num_threads "$train_threads" --train_args "$train_args" \
    --init_param "$init_param" "$train_config" "$dumpdir/$train_data" "$dumpdir/$valid_set" "$exp"
fi

if run_stage 4 "enhance $valid_set $test_sets"; then
  for x in $valid_set $test_sets; do
    steps/decode.sh --nj "$inference_nj" --cmd "$inference_cmd" --use_gpu "$gpu_inference" \
      --model "$inference_model" --enhance_args "$enhance_args" "$dumpdir/$x" "$exp" "$exp/${inference_tag}_$x"
  done
fi

if run_stage 5 "score $test_sets $valid_set -> $exp/RESULTS.md"; then
  steps/score_sets.sh --nj "$nj" --cmd "$decode_cmd" --title "$tag" --score_opts "$score_opts" --valid_set "$valid_set" \
    --inference_tag "$inference_tag" --scoring_protocol "$scoring_protocol" "$dumpdir" "$exp" $test_sets
fi
log "Done (stages $stage-$stop_stage)"
