#!/usr/bin/env bash
# Stage 0 of egs/voiceprompts: fetch the Debian packages that carry the recordings (apt-get download,
# no installation), check them against the sha256 sums recorded below, unpack each with dpkg-deb -x
# into <downloads>/<package>/, and decode its recordings to 16 kHz mono wav under <corpus>
# (local/decode.py: G.722 through ffmpeg, ogg/wav through soundfile + soxr).
#
#   local/download.sh [--check_sha256 true] [--nj 2] <downloads> <corpus> <package>...
#
# Idempotent: <downloads>/<package>/.done (holding the .deb's sha256) marks an unpacked package and
# <corpus>/.done.<package> a decoded one; both present: the package is skipped. A .deb already in
# <downloads> is used instead of downloading it again. Needs apt-get and dpkg-deb (Debian/Ubuntu) for
# a package not yet unpacked, and ffmpeg for the asterisk-core-sounds-* ones; without them it stops
# at once, before downloading anything.
# --check_sha256 false accepts other builds (another Debian or Ubuntu release ships other files; the
# recipe's figures were made with the Debian 12 "bookworm" files listed here).
set -euo pipefail

check_sha256=true
nj=2
sums=""      # a file of more "<package> <version> <sha256>" lines: another recipe's packages (egs/crossvoices)
decoder=""   # the script that decodes the packages of --sums (default: local/decode.py beside this script)
help_message="Usage: $0 [--check_sha256 true|false] [--nj 2] [--sums FILE --decoder SCRIPT] <downloads> <corpus> <package>..."
. utils/parse_options.sh
if [ $# -lt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
downloads=$1
corpus=$2
shift 2

# package -> "version sha256" of the .deb files of Debian 12 (bookworm), fetched 2025 with apt-get download.
declare -A known=(
  [asterisk-core-sounds-fr-g722]="1.6.1-1 7add61d5e42279ecff1bbdf842a5a946ac3644fac9a0fe44384731aa7270c8e0"
  [asterisk-core-sounds-it-g722]="1.6.1-1 46b4cf7afc508a5fcfc051b7ea233251c0d195dd4ef83cc4b7facb4c6429b016"
  [asterisk-core-sounds-ru-g722]="1.6.1-1 673b4238a6b8269960f055d868c6a11083f7a0d00979167cb01554046b48ed9b"
  [klettres-data]="4:22.12.3-1 1186d257a19e84230856baea0b0b1ded8be9195080fcdb2588970b5cd937f5a8"
  [colobot-common-sounds]="0.2.0-2 819e799542eac69c95b072567b5584eb3e0b2bb900de13efa3684915747b1644"
)

declare -A decoder_of=()
if [ -n "$sums" ]; then
  [ -f "$sums" ] || { echo "$0: ERROR: --sums $sums: no such file" >&2; exit 1; }
  while read -r p v h; do
    case "$p" in ''|'#'*) continue ;; esac
    known[$p]="$v $h"
    decoder_of[$p]=$decoder
  done < "$sums"
fi

for pkg in "$@"; do
  if [ -z "${known[$pkg]:-}" ]; then
    echo "$0: ERROR: '$pkg' is not one of the recipe's packages (${!known[*]})" >&2
    exit 1
  fi
done

to_unpack=()
to_decode=()
for pkg in "$@"; do
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
if [ ${#to_decode[@]} -eq 0 ]; then
  echo "$0: every package is in $corpus; nothing to do"
  exit 0
fi

# Fail fast, before any download, on a machine that lacks a tool.
if [ ${#to_unpack[@]} -gt 0 ]; then
  missing=()
  for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    {
      echo "$0: ERROR: stage 0 fetches Debian packages and needs apt-get and dpkg-deb (Debian or Ubuntu); not found: ${missing[*]}."
      echo "Run stage 0 on a Debian/Ubuntu machine (or container) and copy $downloads and $corpus here, then go on with --stage 1."
      echo "Packages still to fetch: ${to_unpack[*]}"
    } >&2
    exit 1
  fi
fi
for pkg in "${to_decode[@]}"; do
  case $pkg in
    asterisk-core-sounds-*)
      if ! command -v ffmpeg >/dev/null 2>&1; then
        echo "$0: ERROR: ffmpeg is needed to decode the G.722 prompts of $pkg: apt-get install ffmpeg" >&2
        exit 1
      fi ;;
  esac
done

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
      {
        echo "$0: ERROR: $deb: sha256 $got, expected $want (version $version of Debian 12 bookworm)."
        echo "Another Debian/Ubuntu release ships another build: if you trust your apt sources, run again with"
        echo "--check_sha256 false (figures in README.md were made with the bookworm files); else delete the file."
      } >&2
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
  python3 "${decoder_of[$pkg]:-$(dirname "$0")/decode.py}" --nj "$nj" "$downloads/$pkg" "$corpus" "$pkg"
done
