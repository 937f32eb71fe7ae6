#!/usr/bin/env bash
# Splits a data dir into N parts for a stage run with --nj N:
#
#   utils/split_data.sh [--per-spk] data/x N
#
# writes data/x/split<N>/1 ... data/x/split<N>/<N>, each a data dir. The utterances of wav.scp are
# split into contiguous, balanced runs (utils/split_scp.pl; deterministic); with --per-spk all
# utterances of one speaker (utt2spk) stay in one part. Every per-utterance file present in data/x
# (*.scp such as wav.scp, spk1.scp, vad.scp, noise1.scp; utt2* such as utt2spk, utt2num_samples,
# utt2noise, utt2snr; text) is filtered to the part's utterances; spk2utt is rebuilt from the part's
# utt2spk. Paths inside the files are copied as they are (so relative paths keep working from the
# recipe folder). The split is built under a temporary name and renamed, and made afresh each time.
set -euo pipefail

per_spk=false
help_message="Usage: $0 [--per-spk true|false] <data-dir> <num-parts>"
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# --per-spk alone (without a value) is accepted too
args=()
for a in "$@"; do [ "$a" = --per-spk ] && args+=(--per-spk true) || args+=("$a"); done
set -- "${args[@]}"
. "$utils/parse_options.sh"

if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
data=$1
nj=$2
case "$nj" in ''|*[!0-9]*|0) echo "$0: number of parts must be a positive integer, not '$nj'" >&2; exit 1 ;; esac
[ -f "$data/wav.scp" ] || { echo "$0: $data/wav.scp: no such file" >&2; exit 1; }

spk_opt=()
if $per_spk; then
  [ -f "$data/utt2spk" ] || { echo "$0: --per-spk needs $data/utt2spk" >&2; exit 1; }
  spk_opt=(--utt2spk "$data/utt2spk")
fi

final="$data/split$nj"
tmp="$data/.split$nj.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
outs=()
for n in $(seq 1 "$nj"); do mkdir -p "$tmp/$n"; outs+=("$tmp/$n/wav.scp"); done
"$utils/split_scp.pl" "${spk_opt[@]}" "$data/wav.scp" "${outs[@]}"

for f in "$data"/*.scp "$data"/utt2* "$data/text"; do
  [ -f "$f" ] || continue
  name=$(basename "$f")
  [ "$name" = wav.scp ] && continue
  for n in $(seq 1 "$nj"); do
    "$utils/filter_scp.pl" "$tmp/$n/wav.scp" "$f" > "$tmp/$n/$name"
  done
done
if [ -f "$data/utt2spk" ]; then
  for n in $(seq 1 "$nj"); do
    "$utils/utt2spk_to_spk2utt.pl" "$tmp/$n/utt2spk" > "$tmp/$n/spk2utt"
  done
fi

rm -rf "$final"
mv "$tmp" "$final"
trap - EXIT
