#!/usr/bin/env bash
# Stage 0 of egs/crossvoices: fetch the Debian packages that carry the recordings (apt-get download, no
# installation), check each .deb against the sha256 recorded below, unpack it with dpkg-deb -x into
# <downloads>/<package>/ and decode its recordings to 16 kHz mono wav under <corpus>.
#
#   local/download.sh [--check_sha256 true] [--nj 2] <downloads> <corpus> <package>...
#
# The packages of egs/voiceprompts go through its own local/download.sh (same sums, same decoding, same
# ids, so its in-domain test can be rebuilt here); the new ones (tuxpaint-stamps-default,
# hedgewars-data, ktuberling-data) through local/decode_clips.py. Packages reserved for an independent
# evaluation of the project are refused by name before anything is done, as is any package not listed.
# Idempotent: <downloads>/<package>/.done (the .deb's sha256) marks an unpacked package and
# <corpus>/.done.<package> a decoded one. A .deb already in <downloads> is not fetched again.
set -euo pipefail

check_sha256=true
nj=2
help_message="Usage: $0 [--check_sha256 true|false] [--nj 2] <downloads> <corpus> <package>..."
. utils/parse_options.sh
if [ $# -lt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
downloads=$1
corpus=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)

# Reserved for an independent evaluation of this project (issue 25): never fetched, never used.
reserved_patterns=(
  "asterisk-core-sounds-en-*" "asterisk-core-sounds-es-*" "festvox-*" "fillets-ng-data*"
  btanks-data etw-data lmms-common lincity-ng-data sonic-pi-samples scorched3d-data jconvolver-config-files
)
# package -> "version sha256" of the Debian 12 (bookworm) .deb files, fetched 2026-12-04 with apt-get download.
declare -A known=(
  [tuxpaint-stamps-default]="2022.06.04-1 6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34"
  [hedgewars-data]="1.0.2-6 722225903a72604403e6e0026e40e9a6953f47a74d94efc5f55504bc05bb4761"
  [ktuberling-data]="4:22.12.3-1 fba44c875bfa31ea488dadd9263e87a4dcaea0bd47d28817f6c0dc6d2af970ed"
)
voiceprompts_packages=" asterisk-core-sounds-fr-g722 asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722 klettres-data colobot-common-sounds "

new=()
old=()
for pkg in "$@"; do
  for pat in "${reserved_patterns[@]}"; do
    # shellcheck disable=SC2053  # glob match on purpose
    if [[ $pkg == $pat ]]; then
      echo "$0: ERROR: '$pkg' is reserved for an independent evaluation of this project (issue 25): it must not be used for training or choosing models" >&2
      exit 1
    fi
  done
  if [ -n "${known[$pkg]:-}" ]; then
    new+=("$pkg")
  elif [[ $voiceprompts_packages == *" $pkg "* ]]; then
    old+=("$pkg")
  else
    echo "$0: ERROR: '$pkg' is not one of the recipe's packages (${!known[*]}${voiceprompts_packages% })" >&2
    exit 1
  fi
done

if [ ${#old[@]} -gt 0 ]; then
  "$here/../../voiceprompts/local/download.sh" --check_sha256 "$check_sha256" --nj "$nj" "$downloads" "$corpus" "${old[@]}"
fi

to_unpack=()
to_decode=()
for pkg in "${new[@]}"; do
  if [ -f "$downloads/$pkg/.done" ]; then
    if [ -f "$corpus/.done.$pkg" ] && cmp -s "$downloads/$pkg/.done" "$corpus/.done.$pkg"; then
      echo "$0: $pkg is unpacked and decoded, skipped"
      continue
    fi
  else
    to_unpack+=("$pkg")
  fi
  to_decode+=("$pkg")
done
if [ ${#to_unpack[@]} -gt 0 ]; then
  for tool in apt-get dpkg-deb; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "$0: ERROR: stage 0 fetches Debian packages and needs apt-get and dpkg-deb (Debian or Ubuntu); not found: $tool. Run stage 0 on such a machine and copy $downloads and $corpus here. Packages still to fetch: ${to_unpack[*]}" >&2
      exit 1
    fi
  done
fi

mkdir -p "$downloads" "$corpus"
downloads_abs=$(cd "$downloads" && pwd)
for pkg in "${to_unpack[@]}"; do
  read -r version want <<< "${known[$pkg]}"
  debs=("$downloads_abs/${pkg}"_*.deb)
  if [ ! -f "${debs[0]}" ]; then
    echo "$0: apt-get download $pkg"
    if ! (cd "$downloads_abs" && apt-get download "$pkg"); then
      echo "$0: ERROR: apt-get download $pkg failed (no network, or no apt source offers it: apt-get update first)" >&2
      exit 1
    fi
    debs=("$downloads_abs/${pkg}"_*.deb)
  fi
  if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
    echo "$0: ERROR: expected one ${pkg}_*.deb in $downloads, found: ${debs[*]}; delete the extra ones" >&2
    exit 1
  fi
  deb=${debs[0]}
  got=$(sha256sum "$deb" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    if $check_sha256; then
      echo "$0: ERROR: $deb: sha256 $got, expected $want (version $version of Debian 12 bookworm); another release ships another build: --check_sha256 false accepts it" >&2
      exit 1
    fi
    echo "$0: WARNING: $deb: sha256 $got differs from the recorded bookworm file (--check_sha256 false: accepted)" >&2
  fi
  echo "$got  $(basename "$deb")" > "$downloads/$pkg.sha256"
  tmp=$downloads/.tmp.$pkg
  rm -rf "$tmp" "$downloads/$pkg"
  dpkg-deb -x "$deb" "$tmp"
  echo "$got" > "$tmp/.done"
  mv "$tmp" "$downloads/$pkg"
  echo "$0: $pkg unpacked into $downloads/$pkg"
done

for pkg in "${to_decode[@]}"; do
  python3 "$here/decode_clips.py" --nj "$nj" "$downloads/$pkg" "$corpus" "$pkg"
done
