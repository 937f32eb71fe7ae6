#!/usr/bin/env bash
# Download and unpack LibriSpeech (OpenSLR 12) and DEMAND (Zenodo record 1227121).
#
#   local/download.sh [--train_sets "train-clean-100"] [--check_md5 true] [--remove_archives false]
#                     <librispeech_root> <demand_root>
#
# LibriSpeech: the --train_sets subsets (train-clean-100 by default; add train-clean-360 for more)
# plus dev-clean and test-clean, into <librispeech_root>/LibriSpeech/<subset>/.
# DEMAND: the 18 environments at 16 kHz into <demand_root>/<ENV>/ch01.wav..ch16.wav; SCAFE exists
# only as a 48 kHz zip, so its 16 channels are resampled to 16 kHz (soxr, csmvanet-resample).
# A subset or environment already there (non-empty folder) is skipped, so with the corpora present
# this does nothing. Downloads resume (curl -C - / wget -c) into <root>/archives/, are checked against
# the known md5 sums, and unpack through a temporary folder. Without network it stops within seconds,
# naming the URLs to fetch by hand.
# LIBRISPEECH_BASE_URL / DEMAND_BASE_URL override the servers.
set -euo pipefail

train_sets=train-clean-100
check_md5=true
remove_archives=false
help_message="Usage: $0 [--train_sets \"train-clean-100 train-clean-360\"] [--check_md5 true|false] [--remove_archives true|false] <librispeech_root> <demand_root>"
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
ls_root=$1
demand_root=$2
. "$(dirname "$0")/fetch.sh"

ls_base=${LIBRISPEECH_BASE_URL:-https://www.openslr.org/resources/12}
demand_base=${DEMAND_BASE_URL:-https://zenodo.org/records/1227121/files}
envs="DKITCHEN DLIVING DWASHING NFIELD NPARK NRIVER OHALLWAY OMEETING OOFFICE PCAFETER PRESTO PSTATION SCAFE SPSQUARE STRAFFIC TBUS TCAR TMETRO"

ls_md5() {
  case $1 in
    dev-clean) echo 42e2234ba48799c1f50f24a7926300a1 ;;
    test-clean) echo 32fa31d27d2e1cad72775fee3f4849a9 ;;
    train-clean-100) echo 2a93770f6d5c6c964bc36631d331a522 ;;
    train-clean-360) echo c0e676e450a7ff2f54aeade5171606fa ;;
    *) echo "" ;;
  esac
}
demand_md5() {
  case $1 in
    DKITCHEN_16k) echo 7ffbf52d7f4699f96927846103dc8788 ;;
    DLIVING_16k) echo 46741384d9e434a0bd8b3ec1830b6052 ;;
    DWASHING_16k) echo 7e5ee9437ce9409c5f9a779b6212a240 ;;
    *) echo "" ;;
  esac
}
ls_url() { echo "$ls_base/$1.tar.gz"; }
demand_zip() { if [ "$1" = SCAFE ]; then echo SCAFE_48k; else echo "${1}_16k"; fi; }
demand_url() { echo "$demand_base/$(demand_zip "$1").zip?download=1"; }
present() { [ -d "$1" ] && [ -n "$(ls -A "$1")" ]; }

ls_missing=()
for s in $train_sets dev-clean test-clean; do
  if present "$ls_root/LibriSpeech/$s"; then
    echo "$0: $ls_root/LibriSpeech/$s is present, skipped"
  else
    ls_missing+=("$s")
  fi
done
demand_missing=()
for e in $envs; do
  if present "$demand_root/$e"; then
    echo "$0: $demand_root/$e is present, skipped"
  else
    demand_missing+=("$e")
  fi
done
if [ ${#ls_missing[@]} -eq 0 ] && [ ${#demand_missing[@]} -eq 0 ]; then
  echo "$0: LibriSpeech ($train_sets dev-clean test-clean) and DEMAND are complete; nothing to download"
  exit 0
fi

unreachable=
if [ ${#ls_missing[@]} -gt 0 ] && ! fetch_reachable "$(ls_url "${ls_missing[0]}")"; then
  unreachable+=" $(ls_url "${ls_missing[0]}")"
fi
if [ ${#demand_missing[@]} -gt 0 ] && ! fetch_reachable "$(demand_url "${demand_missing[0]}")"; then
  unreachable+=" $(demand_url "${demand_missing[0]}")"
fi
if [ -n "$unreachable" ]; then
  {
    echo "$0: ERROR: cannot reach the download server(s) (no network?):$unreachable"
    if [ ${#ls_missing[@]} -gt 0 ]; then
      echo "Download these LibriSpeech files by hand and unpack them in $ls_root (the LIBRISPEECH variable of"
      echo "db.sh, or ./run.sh --librispeech_root DIR), giving $ls_root/LibriSpeech/<subset>/:"
      for s in "${ls_missing[@]}"; do echo "  $(ls_url "$s")"; done
    fi
    if [ ${#demand_missing[@]} -gt 0 ]; then
      echo "Download these DEMAND files by hand and unpack them in $demand_root (the DEMAND variable of"
      echo "db.sh, or ./run.sh --demand_root DIR), giving $demand_root/<ENV>/ch01.wav..ch16.wav at 16 kHz"
      echo "(SCAFE exists only at 48 kHz: resample its channels to 16 kHz, e.g. with csmvanet-resample):"
      for e in "${demand_missing[@]}"; do echo "  $(demand_url "$e")"; done
    fi
    echo "then run stage 0 again (it skips what is present) or go on with --stage 1."
  } >&2
  exit 1
fi

check() {  # check <archive> <md5>
  if $check_md5 && ! fetch_md5_ok "$1" "$2"; then
    mv "$1" "$1.bad"
    echo "$0: ERROR: $1 (moved to $1.bad) does not match its md5 sum; delete it and run again, or, if you" \
         "trust the file, move it back and run with --check_md5 false" >&2
    exit 1
  fi
}

for s in "${ls_missing[@]}"; do
  tgz=$ls_root/archives/$s.tar.gz
  if [ ! -f "$tgz" ]; then
    echo "$0: downloading $(ls_url "$s")"
    fetch_file "$(ls_url "$s")" "$tgz" || {
      echo "$0: ERROR: download of $(ls_url "$s") failed; run again to resume ($tgz.part)" >&2; exit 1; }
  fi
  check "$tgz" "$(ls_md5 "$s")"
  echo "$0: unpacking $tgz"
  mkdir -p "$ls_root/LibriSpeech"
  tmp=$(mktemp -d "$ls_root/.unpack.$s.XXXXXX")
  tar -xzf "$tgz" -C "$tmp"
  [ -d "$tmp/LibriSpeech/$s" ] || { echo "$0: ERROR: $tgz has no LibriSpeech/$s folder" >&2; rm -rf "$tmp"; exit 1; }
  for f in "$tmp"/LibriSpeech/*.TXT; do
    [ -e "$ls_root/LibriSpeech/$(basename "$f")" ] || mv "$f" "$ls_root/LibriSpeech/"
  done
  rm -rf "${ls_root:?}/LibriSpeech/$s"
  mv "$tmp/LibriSpeech/$s" "$ls_root/LibriSpeech/$s"
  rm -rf "$tmp"
  $remove_archives && rm -f "$tgz"
done

for e in "${demand_missing[@]}"; do
  z=$(demand_zip "$e")
  zip=$demand_root/archives/$z.zip
  if [ ! -f "$zip" ]; then
    echo "$0: downloading $(demand_url "$e")"
    fetch_file "$(demand_url "$e")" "$zip" || {
      echo "$0: ERROR: download of $(demand_url "$e") failed; run again to resume ($zip.part)" >&2; exit 1; }
  fi
  check "$zip" "$(demand_md5 "$z")"
  echo "$0: unpacking $zip"
  if [ "$e" = SCAFE ]; then
    # 48 kHz only: unpack aside, resample every channel to 16 kHz into $demand_root/SCAFE.
    fetch_unpack "$zip" "$demand_root/archives" SCAFE_48k
    src=$demand_root/archives/SCAFE_48k
    [ -d "$src/SCAFE" ] && src=$src/SCAFE
    for f in "$src"/ch*.wav; do echo "$(basename "$f" .wav) $f"; done > "$demand_root/archives/SCAFE_48k.scp"
    tmp=$(mktemp -d "$demand_root/.unpack.SCAFE.XXXXXX")
    csmvanet-resample --quiet --fs 16000 --scp "$demand_root/archives/SCAFE_48k.scp" --out_dir "$tmp" \
      --out_scp "$demand_root/archives/SCAFE_16k.scp"
    rm -rf "${demand_root:?}/SCAFE"
    mv "$tmp" "$demand_root/SCAFE"
    rm -rf "$demand_root/archives/SCAFE_48k" "$demand_root/archives/SCAFE_48k.scp" "$demand_root/archives/SCAFE_16k.scp"
  else
    fetch_unpack "$zip" "$demand_root" "$e"
  fi
  $remove_archives && rm -f "$zip"
done
echo "$0: LibriSpeech in $ls_root/LibriSpeech, DEMAND in $demand_root"
