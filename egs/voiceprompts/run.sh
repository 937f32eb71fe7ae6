#!/usr/bin/env bash
# egs/voiceprompts: CSM-VANet on real speech and real noise that Debian packages carry (no corpus
# download from a research site; needs apt-get, dpkg-deb and ffmpeg for stage 0). See README.md.
#
#   ./run.sh [--stage 0] [--stop_stage 5] [--nj 2] [--train_args "--train.epochs 2"] ...
#
#   0  apt-get download + dpkg-deb -x the 5 packages, decode to 16 kHz     -> downloads/, corpus/
#   1  data prep: utterances of several prompts with pauses, split by language/speaker;
#      noise lists split by recording (+ babble, coloured noise)          -> data/speech_*, data/noise_*, dump/{speech,noise}_*
#   2  simulate mixtures (train 2 s clips, valid/test whole utterances) + VAD labels -> data/{train,valid,test}, dump/
#   3  train                                                               -> exp/<tag>/
#   4  enhance the test set                                                -> exp/<tag>/enhanced_test/
#   5  score                                                               -> exp/<tag>/RESULTS.md
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"; }

stage=0
stop_stage=5
nj=2                          # parallel jobs for decoding, simulation, VAD labels, enhancement, scoring
ngpu=0                        # 0: CPU; >1: DDP through torchrun
packages="asterisk-core-sounds-fr-g722 asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722 klettres-data colobot-common-sounds"
check_sha256=true             # false: accept .deb files of another Debian/Ubuntu release
downloads=downloads           # stage 0: the .deb files and their unpacked trees
corpus=corpus                 # stage 0: decoded 16 kHz prompts and noise recordings
valid_langs="es pt nl"        # held-out languages (and so speakers) of the validation set
test_langs="it de nds he tn"  # held-out languages of the test set
data_prep_args=""             # more local/data_prep.py options
num_train=3000                # training mixtures
train_seconds=2               # their length
train_snrs=uniform:-5:15      # dB
test_snrs=-5,0,5,10,15        # dB: valid draws one per utterance; test has every (noise type, SNR) pair equally often
seed=1
train_config=conf/train.yaml
train_args=""                 # overrides for csmvanet-train, e.g. "--train.epochs 1"
tag=""                        # experiment name; default: the config's name
datadir=data
dumpdir=dump
expdir=exp

help_message="Usage: $0 [--stage N] [--stop_stage N] [--nj N] [--train_args \"...\"] [--tag T]"
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

[ -n "$tag" ] || tag=$(basename "$train_config" .yaml)
exp=$expdir/$tag

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "stage 0: Debian packages -> $downloads, decoded -> $corpus"
  # shellcheck disable=SC2086
  local/download.sh --check_sha256 "$check_sha256" --nj "$nj" "$downloads" "$corpus" $packages
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: data prep -> $datadir (valid languages: $valid_langs; test languages: $test_langs)"
  local/data_prep.sh --valid_langs "$valid_langs" --test_langs "$test_langs" --seed "$seed" \
    --data_prep_args "$data_prep_args" "$corpus" "$datadir" "$dumpdir"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: simulation and VAD labels"
  # training: $train_seconds s clips, SNR drawn from $train_snrs; validation: whole utterances of the
  # held-out validation speakers with validation noises; test: whole utterances of the test speakers
  # with test noises, as many per (noise type, SNR) pair as the test utterances allow (each once).
  # Each data dir is built under a temporary name and renamed once it validates.
  for part in train valid test; do
    case $part in
      train) opts=(--num "$num_train" --length "$train_seconds" --snrs "$train_snrs" --seed "$seed") ;;
      valid) opts=(--snrs "$test_snrs" --seed "$((seed + 1))") ;;
      test)
        n_utts=$(wc -l < "$datadir/speech_test/wav.scp")
        n_types=$(cut -d' ' -f2 "$datadir/noise_test/utt2noise" | sort -u | wc -l)
        n_snrs=$(echo "$test_snrs" | tr ',' '\n' | grep -c .)
        per=$(( n_utts / (n_types * n_snrs) ))
        [ "$per" -ge 1 ] || per=1
        opts=(--per_condition "$per" --snrs "$test_snrs" --seed "$((seed + 2))") ;;
    esac
    tmp=$datadir/.tmp.$part
    rm -rf "$tmp"
    csmvanet-simulate --make_spec --speech_scp "$datadir/speech_$part/wav.scp" \
      --speech_utt2spk "$datadir/speech_$part/utt2spk" --speech_lengths "$datadir/speech_$part/utt2num_samples" \
      --noise_scp "$datadir/noise_$part/wav.scp" --noise2type "$datadir/noise_$part/utt2noise" \
      --noise_lengths "$datadir/noise_$part/utt2num_samples" \
      "${opts[@]}" --spec "$tmp/spec.tsv" \
      --out_wav_dir "$dumpdir/$part" --data_dir "$tmp" --nj "$nj" --quiet
    # VAD labels live beside the audio in dump/ (the scp holds the ark's absolute path).
    csmvanet-vad-labels --scp "$tmp/spk1.scp" --out_dir "$dumpdir/$part/vad" --config conf/vad.yaml \
      --stft_config "$train_config" --nj "$nj" --quiet
    cp "$dumpdir/$part/vad/vad_labels.scp" "$dumpdir/$part/vad/frame_shift" "$tmp/"
    utils/validate_data_dir.sh "$tmp"
    rm -rf "${datadir:?}/$part" && mv "$tmp" "$datadir/$part"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: train $train_config -> $exp"
  steps/train.sh --cmd "$cuda_cmd" --ngpu "$ngpu" --train_args "$train_args" \
    "$train_config" "$datadir/train" "$datadir/valid" "$exp"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: enhance $datadir/test -> $exp/enhanced_test"
  steps/decode.sh --nj "$nj" --cmd "$decode_cmd" "$datadir/test" "$exp" "$exp/enhanced_test"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "stage 5: score -> $exp/RESULTS.md"
  steps/score.sh --nj "$nj" --cmd "$decode_cmd" --title "egs/voiceprompts: $tag" --report_copy "$exp/RESULTS.md" \
    "$datadir/test" "$exp/enhanced_test"
  log "done: $exp/RESULTS.md"
fi
