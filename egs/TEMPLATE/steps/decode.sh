#!/usr/bin/env bash
# Enhance a data dir with a trained model: <data_dir>/wav.scp is split over --nj jobs run through
# $cmd (utils/run.pl or utils/slurm.pl), each job runs csmvanet-enhance, then the parts are merged.
# A data dir with a Kaldi `segments` file (wav.scp keyed by recording) is split by utterance of
# `segments` instead: each job gets its share of the segments and the whole wav.scp
# (csmvanet-enhance --segments), and every utterance is enhanced on its own:
#
#   <enh_dir>/wav/<utt>.wav          enhanced audio (same length and sample rate as the input)
#   <enh_dir>/enhanced.scp           utt -> enhanced file
#   <enh_dir>/vad_prob.scp           utt -> frame speech probabilities (kaldiio float32 vectors; the
#                                    arks stay in <enh_dir>/split/vad.<job>/vad_prob.ark)
#   <enh_dir>/segments, vad.rttm     speech segments from the VAD (Kaldi segments, RTTM)
#   <enh_dir>/log/enhance.<job>.log  per-job logs
#
# --model: a weights file name inside <exp_dir> (default valid.loss.ave.pth, the average of the N
# best epochs), or a path to a packed model / weights file (then used instead of <exp_dir>).
# --enhance_args: extra csmvanet-enhance options, e.g. "--device cuda --segment_seconds 6" or
# "--vad_threshold 0.6 --min_speech 0.3". Each job runs with --num_threads 1 unless overridden there.
# --use_gpu true: each job gets one GPU (--gpu 1 to $cmd) and enhances with --device cuda.
# Every option and input is checked before anything of an earlier run in <enh_dir> is removed.
# Exit status non-zero if any utterance could not be enhanced (the merged lists hold the others).
set -euo pipefail

nj=4
cmd=utils/run.pl
model=valid.loss.ave.pth
enhance_args=
use_gpu=false
help_message="Usage: $0 [--nj N] [--cmd utils/run.pl] [--model valid.loss.ave.pth] [--use-gpu false] [--enhance-args \"...\"] <data_dir> <exp_dir> <enh_dir>
  e.g. $0 --nj 8 data/test exp/csmvanet exp/csmvanet/enhance_test"

. utils/parse_options.sh

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
exp=$2
dir=$3

case "$nj" in ''|*[!0-9]*|0) echo "$0: --nj must be a positive number, not '$nj'" >&2; exit 1 ;; esac
[ -n "$cmd" ] || { echo "$0: --cmd is empty" >&2; exit 1; }
[ -n "$model" ] || { echo "$0: --model is empty" >&2; exit 1; }
[ -f "$data/wav.scp" ] || { echo "$0: no such file: $data/wav.scp" >&2; exit 1; }
if [ -e "$dir" ] && [ ! -d "$dir" ]; then echo "$0: $dir exists and is not a directory" >&2; exit 1; fi
if [ -f "$model" ]; then
  model_opts=(--model "$model")                      # a packed model or weights file path
else
  [ -d "$exp" ] || { echo "$0: no such experiment dir: $exp" >&2; exit 1; }
  [ -f "$exp/$model" ] || { echo "$0: no such model file: $exp/$model" >&2; exit 1; }
  model_opts=(--model "$exp" --checkpoint "$model")
fi

utt_list=$data/wav.scp                             # the list split by utterance over the jobs
[ -f "$data/segments" ] && utt_list=$data/segments
num_utts=$(grep -c . "$utt_list" || true)
[ "$num_utts" -gt 0 ] || { echo "$0: $utt_list is empty" >&2; exit 1; }
[ "$nj" -gt "$num_utts" ] && nj=$num_utts
if $use_gpu; then
  cmd="$cmd --gpu 1"
  enhance_args="--device cuda $enhance_args"
fi

rm -rf "$dir/split" "$dir/enhanced.scp" "$dir/vad_prob.scp" "$dir/segments" "$dir/vad.rttm"
mkdir -p "$dir/split" "$dir/log" "$dir/wav"
parts=()
if [ -f "$data/segments" ]; then
  for j in $(seq "$nj"); do parts+=("$dir/split/segments.$j"); done
  input_opts=(--wav_scp "$data/wav.scp" --segments "$dir/split/segments.JOB")
else
  for j in $(seq "$nj"); do parts+=("$dir/split/wav.$j.scp"); done
  input_opts=(--wav_scp "$dir/split/wav.JOB.scp")
fi
utils/split_scp.pl "$utt_list" "${parts[@]}"

echo "$0: enhancing $num_utts utterances of $data with ${model_opts[*]} in $nj jobs (logs: $dir/log/enhance.*.log)"
jobs_ok=true
# shellcheck disable=SC2086  # $cmd and $enhance_args are word lists
$cmd JOB=1:"$nj" "$dir/log/enhance.JOB.log" \
  csmvanet-enhance "${model_opts[@]}" "${input_opts[@]}" --output_dir "$dir/wav" \
    --out_scp "$dir/split/enhanced.JOB.scp" --vad_dir "$dir/split/vad.JOB" --num_threads 1 \
    $enhance_args || jobs_ok=false

# Merge whatever the jobs wrote (a failed job still lists the utterances it enhanced).
merge() {  # merge <out> <sort options> <part files...>
  local out=$1 keys=$2
  shift 2
  local files=()
  for f in "$@"; do [ -f "$f" ] && files+=("$f"); done
  if [ ${#files[@]} -gt 0 ]; then
    # shellcheck disable=SC2086
    cat "${files[@]}" | LC_ALL=C sort $keys > "$out.tmp"
  else
    : > "$out.tmp"
  fi
  mv "$out.tmp" "$out"
}
merge "$dir/enhanced.scp" "-k1,1" "$dir"/split/enhanced.*.scp
merge "$dir/vad_prob.scp" "-k1,1" "$dir"/split/vad.*/vad_prob.scp
merge "$dir/segments" "-k1,1" "$dir"/split/vad.*/segments
merge "$dir/vad.rttm" "-k2,2 -k4,4n" "$dir"/split/vad.*/vad.rttm

num_done=$(grep -c . "$dir/enhanced.scp" || true)
echo "$0: enhanced $num_done of $num_utts utterances -> $dir/enhanced.scp, $dir/vad_prob.scp, $dir/segments, $dir/vad.rttm"
if ! $jobs_ok || [ "$num_done" -ne "$num_utts" ]; then
  echo "$0: $((num_utts - num_done)) utterance(s) not enhanced: see the ERROR lines in $dir/log/enhance.*.log" >&2
  exit 1
fi
