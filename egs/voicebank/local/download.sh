#!/usr/bin/env bash
# Download and unpack VoiceBank+DEMAND (Valentini-Botinhao et al. 2016, DOI 10.7488/ds/2117), the
# 28-speaker version, into <voicebank_root>:
#   clean_trainset_28spk_wav/ noisy_trainset_28spk_wav/ clean_testset_wav/ noisy_testset_wav/
#   trainset_28spk_txt/ testset_txt/ logfiles/
# A part already unpacked there (a non-empty folder) is skipped, so with the corpus present this does
# nothing. Downloads resume (curl -C - / wget -c) into <voicebank_root>/zips/, are checked against the
# known md5 sums, and each zip is unpacked through a temporary folder (a folder appears complete or not
# at all). Without network it stops within seconds, naming the URLs to fetch by hand.
#
#   local/download.sh [--check_md5 true] [--remove_zips false] <voicebank_root>
#
# VOICEBANK_BASE_URL overrides the server (default: Edinburgh DataShare).
set -euo pipefail

check_md5=true
remove_zips=false
help_message="Usage: $0 [--check_md5 true|false] [--remove_zips true|false] <voicebank_root>"
. utils/parse_options.sh
if [ $# -ne 1 ]; then
  echo "$help_message" >&2
  exit 1
fi
root=$1
. "$(dirname "$0")/fetch.sh"

base=${VOICEBANK_BASE_URL:-https://datashare.ed.ac.uk/bitstream/handle/10283/2791}
# name, DataShare sequence number, md5 (from a third-party listing; empty: unknown)
parts="clean_trainset_28spk_wav 2 d2d5a45ec32f8fcbf201bde0447e20ba
noisy_trainset_28spk_wav 6 1fca9e8bafb8cd069f6653c6d92f9e9c
clean_testset_wav 1 34eb1c0ba7ef667e9b966866c542fc16
noisy_testset_wav 5 fb1b86caa31e8ba5b506c0c64da9aab5
trainset_28spk_txt 9 -
testset_txt 8 -
logfiles 4 -"

url_of() { echo "$base/$1.zip?sequence=$2&isAllowed=y"; }

missing=()
while read -r name seq md5; do
  if [ -d "$root/$name" ] && [ -n "$(ls -A "$root/$name")" ]; then
    echo "$0: $root/$name is present, skipped"
  else
    missing+=("$name $seq $md5")
  fi
done <<< "$parts"
if [ ${#missing[@]} -eq 0 ]; then
  echo "$0: VoiceBank+DEMAND is complete in $root; nothing to download"
  exit 0
fi

read -r pname pseq _ <<< "${missing[0]}"
probe=$(url_of "$pname" "$pseq")
if ! fetch_reachable "$probe"; then
  {
    echo "$0: ERROR: cannot reach the VoiceBank+DEMAND server (no network?): $probe"
    echo "Download these files by hand (https://doi.org/10.7488/ds/2117) and unpack each into"
    echo "$root (the VOICEBANK variable of db.sh, or ./run.sh --voicebank_root DIR):"
    for m in "${missing[@]}"; do
      read -r name seq _ <<< "$m"
      echo "  $(url_of "$name" "$seq")"
    done
    echo "then run stage 0 again (it skips what is present) or go on with --stage 1."
  } >&2
  exit 1
fi

mkdir -p "$root/zips"
for m in "${missing[@]}"; do
  read -r name seq md5 <<< "$m"
  [ "$md5" = - ] && md5=
  zip=$root/zips/$name.zip
  url=$(url_of "$name" "$seq")
  if [ ! -f "$zip" ]; then
    echo "$0: downloading $url"
    if ! fetch_file "$url" "$zip"; then
      echo "$0: ERROR: download of $url failed; run again to resume ($zip.part), or fetch it by hand into $zip" >&2
      exit 1
    fi
  fi
  if $check_md5 && ! fetch_md5_ok "$zip" "$md5"; then
    mv "$zip" "$zip.bad"
    echo "$0: ERROR: $zip (moved to $zip.bad) does not match the known md5 sum (a third-party value);" \
         "delete it and run again, or, if you trust the file, move it back and run with --check_md5 false" >&2
    exit 1
  fi
  echo "$0: unpacking $zip"
  fetch_unpack "$zip" "$root" "$name"
  $remove_zips && rm -f "$zip"
done
echo "$0: VoiceBank+DEMAND is in $root"
