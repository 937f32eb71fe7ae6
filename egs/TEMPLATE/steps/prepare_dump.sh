#!/usr/bin/env bash
# Stage 2 of the recipes: the data dirs used from then on, <dump-dir>/<set>, at --fs Hz, one per set
# spec (one argument each):
#
#   "<set>"                         <data-dir>/<set> holds ready-made mixtures (wav.scp noisy, spk1.scp
#                                   clean, noise1.scp with --use_noise_ref true): resampled to --fs
#                                   (csmvanet-resample, soxr); utt2spk spk2utt text utt2noise utt2snr copied
#   "<set> <speech> <noise> [opts]" mixtures made from the clean speech list <data-dir>/<speech> (wav.scp,
#                                   utt2spk) and the noise list <data-dir>/<noise> (wav.scp and the
#                                   --noise_types file) with these csmvanet-simulate options, e.g.
#                                   "--num 600 --length 2 --snrs uniform:-5:10 --seed 1" (--make_spec:
#                                   spec.tsv, a pure function of the lists and the seed; lengths from the
#                                   lists' utt2num_samples where present). `--per_condition auto`: as many
#                                   mixtures per (noise type, SNR of --snrs) pair as the speech list allows
#                                   (at least 1), each utterance at most once.
#
# Then VAD labels of the clean speech (csmvanet-vad-labels: frames of the training config's stft:
# section, settings of --vad_config) and a check of each set (utils/validate_data_dir.sh --fs
# --stft-config --require). Each data dir is built as <dump-dir>/.tmp.<set> and renamed once it
# validates, so a killed run leaves nothing a later stage would trust; the audio and VAD arks go to
# <dump-dir>/audio/<set>/ (written file by file, atomically), or with --audio_in_set true to
# <dump-dir>/<set>/wav/ (an earlier <dump-dir>/<set> is then removed first), the logs to <dump-dir>/<set>/log/.
# Last, when --train_data is not --train_set (run.sh: --speed_perturb_factors, --min_wav_duration,
# --max_wav_duration), steps/perturb_train_set.sh makes <dump-dir>/<train_data> from <dump-dir>/<train_set>.
# Every option and input is checked before anything is written.
#
#   steps/prepare_dump.sh [options] <data-dir> <dump-dir> <set-spec> [<set-spec> ...]
#   e.g. steps/prepare_dump.sh --nj 8 --fs 16000 data dump train valid test
set -euo pipefail

nj=4
cmd=utils/run.pl
fs=16000
train_config=conf/train.yaml
vad_config=conf/vad.yaml
use_noise_ref=false      # also write the scaled noise of each mixture (noise1.scp, ESPnet's noise reference)
audio_format=wav         # wav or flac
noise_types=utt2noise    # the file of a noise list giving each noise's type (written to utt2noise)
audio_in_set=false       # true: the audio of <set> in <dump-dir>/<set>/wav/ (else <dump-dir>/audio/<set>/)
train_set=train          # the training set, and the set made from it (speed perturbation, length filter):
train_data=train
speed_perturb_factors=   # steps/perturb_train_set.sh options (empty factors: 1.0)
min_wav_duration=
max_wav_duration=
help_message="Usage: $0 [options] <data-dir> <dump-dir> <set-spec> [<set-spec> ...]
  set spec: \"<set>\" (ready-made mixtures, resampled) or \"<set> <speech-list> <noise-list> [csmvanet-simulate options]\"
Options: --nj N --cmd CMD --fs HZ --train_config F --vad_config F --use_noise_ref BOOL --audio_format wav|flac
  --noise_types FILE --audio_in_set BOOL --train_set SET --train_data SET --speed_perturb_factors \"F ...\" --min_wav_duration S
  --max_wav_duration S (see the head of $0)"
. utils/parse_options.sh
if [ $# -lt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
dump=$2
shift 2

die() { echo "$0: $*" >&2; exit 1; }
case "$nj" in ''|*[!0-9]*|0) die "--nj must be a positive number, not '$nj'" ;; esac
case "$use_noise_ref" in true) noise_opt=--write_noise ;; false) noise_opt= ;; *) die "--use_noise_ref true|false, not '$use_noise_ref'" ;; esac
case "$audio_format" in wav|flac) ;; *) die "--audio_format wav or flac, not '$audio_format'" ;; esac
case "$audio_in_set" in true|false) ;; *) die "--audio_in_set true|false, not '$audio_in_set'" ;; esac
[ -n "$cmd" ] || die "--cmd is empty"
for f in "$train_config" "$vad_config"; do
  [ -f "$f" ] || die "no such file: $f"
done

# The value of --snrs among csmvanet-simulate options.
snrs_of() {
  local snrs= prev= w
  for w in "$@"; do
    if [ "$prev" = --snrs ]; then snrs=$w; fi
    case "$w" in --snrs=*) snrs=${w#--snrs=} ;; esac
    prev=$w
  done
  echo "$snrs"
}

# `--per_condition auto` of a simulated set: utterances / (noise types x SNRs), at least 1.
per_condition() {  # per_condition <speech-list> <noise-list> <simulate options...>
  local speech=$1 noise=$2 snrs n_utts n_types n_snrs per
  shift 2
  snrs=$(snrs_of "$@")
  n_utts=$(wc -l < "$data/$speech/wav.scp")
  n_types=$(cut -d' ' -f2 "$data/$noise/$noise_types" | sort -u | wc -l)
  n_snrs=$(echo "$snrs" | tr ',' '\n' | grep -c .)
  per=$(( n_utts / (n_types * n_snrs) ))
  [ "$per" -ge 1 ] || per=1
  echo "$per"
}

sets=()
for spec in "$@"; do
  read -r -a words <<< "$spec"
  [ ${#words[@]} -eq 1 ] || [ ${#words[@]} -ge 3 ] || die "set spec '$spec': give <set>, or <set> <speech-list> <noise-list> [options]"
  x=${words[0]}
  [[ "$x" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "set spec '$spec': '$x' is not a set name"
  sets+=("$x")
  if [ ${#words[@]} -eq 1 ]; then
    need=("$data/$x/wav.scp" "$data/$x/spk1.scp")
    if $use_noise_ref; then need+=("$data/$x/noise1.scp"); fi
  else
    need=("$data/${words[1]}/wav.scp" "$data/${words[1]}/utt2spk" "$data/${words[2]}/wav.scp" "$data/${words[2]}/$noise_types")
  fi
  for f in "${need[@]}"; do
    [ -f "$f" ] || die "no such file: $f (run stage 1)"
  done
  case " ${words[*]:3} " in *" --per_condition auto "*|*" --per_condition=auto "*)
    [[ "$(snrs_of "${words[@]:3}")" =~ ^[-0-9.,]+$ ]] \
      || die "set spec '$spec': --per_condition auto needs a list of SNRs (--snrs -5,0,5)" ;;
  esac
done
if [ "$train_data" != "$train_set" ] && [[ " ${sets[*]} " != *" $train_set "* ]]; then
  die "--train_set $train_set is not one of the sets made here (${sets[*]}), so --train_data $train_data cannot be made from it"
fi

require="wav.scp spk1.scp utt2spk spk2utt utt2num_samples vad_labels.scp frame_shift"
if $use_noise_ref; then require="$require noise1.scp"; fi
for spec in "$@"; do
  read -r -a words <<< "$spec"
  x=${words[0]}
  tmp=$dump/.tmp.$x
  audio=$dump/audio/$x
  rm -rf "$tmp"
  if $audio_in_set; then   # the new audio goes where the earlier set's is: that set is gone from here on
    audio=$dump/$x/wav
    rm -rf "${dump:?}/$x"
  fi
  mkdir -p "$tmp/log"
  if [ ${#words[@]} -eq 1 ]; then   # ready-made mixtures: resampled copies
    src=$data/$x
    for scp in wav spk1 noise1; do
      lengths=()
      case $scp in
        wav) out=noisy; lengths=(--utt2num_samples "$tmp/utt2num_samples") ;;
        spk1) out=clean ;;
        noise1) $use_noise_ref || continue; out=noise ;;
      esac
      $cmd --num-threads "$nj" "$tmp/log/resample_$out.log" \
        csmvanet-resample --quiet --audio_format "$audio_format" --nj "$nj" --fs "$fs" --scp "$src/$scp.scp" \
          --out_dir "$audio/$out" --out_scp "$tmp/$scp.scp" "${lengths[@]}"
    done
    for f in utt2spk spk2utt text utt2noise utt2snr; do
      if [ -f "$src/$f" ]; then cp "$src/$f" "$tmp/$f"; fi
    done
    set_require=$require
  else                              # clean speech + noise lists: simulated mixtures
    speech=${words[1]}
    noise=${words[2]}
    opts=("${words[@]:3}")
    for i in "${!opts[@]}"; do
      if [ "${opts[$i]}" = auto ] && [ "$i" -gt 0 ] && [ "${opts[$((i - 1))]}" = --per_condition ]; then
        opts[$i]=$(per_condition "$speech" "$noise" "${opts[@]}")
      elif [ "${opts[$i]}" = --per_condition=auto ]; then
        opts[$i]=--per_condition=$(per_condition "$speech" "$noise" "${opts[@]}")
      fi
    done
    lengths=()
    if [ -f "$data/$speech/utt2num_samples" ]; then lengths+=(--speech_lengths "$data/$speech/utt2num_samples"); fi
    if [ -f "$data/$noise/utt2num_samples" ]; then lengths+=(--noise_lengths "$data/$noise/utt2num_samples"); fi
    $cmd --num-threads "$nj" "$tmp/log/simulate.log" \
      csmvanet-simulate --quiet --fs "$fs" --audio_format "$audio_format" ${noise_opt} --make_spec --spec "$tmp/spec.tsv" \
        --speech_scp "$data/$speech/wav.scp" --speech_utt2spk "$data/$speech/utt2spk" \
        --noise_scp "$data/$noise/wav.scp" --noise2type "$data/$noise/$noise_types" "${lengths[@]}" \
        "${opts[@]}" --data_dir "$tmp" --out_wav_dir "$audio" --nj "$nj"
    set_require="$require utt2noise utt2snr"
  fi
  # VAD labels live beside the audio (the scp holds the ark's absolute path).
  $cmd --num-threads "$nj" "$tmp/log/vad_labels.log" \
    csmvanet-vad-labels --quiet --nj "$nj" --config "$vad_config" --stft_config "$train_config" \
      --scp "$tmp/spk1.scp" --out_dir "$audio/vad"
  cp "$audio/vad/vad_labels.scp" "$audio/vad/frame_shift" "$tmp/"
  utils/validate_data_dir.sh --fs "$fs" --stft-config "$train_config" --require "$set_require" "$tmp"
  if $audio_in_set; then mv "$audio" "$tmp/wav"; fi
  rm -rf "${dump:?}/$x" && mv "$tmp" "$dump/$x"
done

if [ "$train_data" != "$train_set" ]; then   # ESPnet's speed perturbation / length filter
  steps/perturb_train_set.sh --nj "$nj" --fs "$fs" --speed_perturb_factors "${speed_perturb_factors:-1.0}" \
    --min_wav_duration "$min_wav_duration" --max_wav_duration "$max_wav_duration" --audio_format "$audio_format" \
    --train_config "$train_config" --vad_config "$vad_config" "$dump/$train_set" "$dump/$train_data"
fi
