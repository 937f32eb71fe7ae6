# Download helpers for the recipes' local/download.sh (sourced, not run). Uses curl, else wget.
#
#   fetch_reachable URL          0 if the server answers at all (any HTTP status), within ~10 s
#   fetch_file URL OUT           resumable download to OUT (OUT.part while incomplete, renamed at the end)
#   fetch_md5_ok FILE MD5        0 if FILE's md5 is MD5 (an empty MD5 means unknown: always 0)
#   fetch_unpack ARCHIVE DEST NAME
#                                unpack a .zip or .tar.gz into a temporary folder beside DEST, then move
#                                the folder NAME (or, if the archive has no top folder NAME, everything)
#                                to DEST/NAME; DEST/NAME appears complete or not at all.
# Timeouts: FETCH_CONNECT_TIMEOUT (default 5 s) to connect, FETCH_PROBE_TIMEOUT (default 15 s) for
# the reachability probe; downloads themselves have no total time limit.

FETCH_CONNECT_TIMEOUT=${FETCH_CONNECT_TIMEOUT:-5}
FETCH_PROBE_TIMEOUT=${FETCH_PROBE_TIMEOUT:-15}

fetch_reachable() {
  local url=$1
  if command -v curl >/dev/null 2>&1; then
    # No -f: any HTTP answer (even 403/405) shows the network and the server work. HEAD, one try.
    curl -sS -I -o /dev/null --connect-timeout "$FETCH_CONNECT_TIMEOUT" --max-time "$FETCH_PROBE_TIMEOUT" \
      "$url" 2>/dev/null
  else
    local rc=0
    wget -q --spider --tries=1 --timeout="$FETCH_CONNECT_TIMEOUT" "$url" >/dev/null 2>&1 || rc=$?
    # wget exit 8: the server answered with an error status, which still proves reachability.
    [ "$rc" -eq 0 ] || [ "$rc" -eq 8 ]
  fi
}

fetch_file() {
  local url=$1 out=$2
  mkdir -p "$(dirname "$out")"
  if command -v curl >/dev/null 2>&1; then
    curl -fL --connect-timeout "$FETCH_CONNECT_TIMEOUT" --retry 3 --retry-delay 5 -C - \
      -o "$out.part" "$url" || return 1
  else
    wget -c --tries=3 --timeout="$FETCH_CONNECT_TIMEOUT" -O "$out.part" "$url" || return 1
  fi
  mv "$out.part" "$out"
}

fetch_md5_ok() {
  local file=$1 want=$2 got
  [ -n "$want" ] || return 0
  got=$(md5sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "md5 of $file is $got, expected $want" >&2
    return 1
  fi
}

fetch_unpack() {
  local archive=$1 dest=$2 name=$3 tmp
  mkdir -p "$dest"
  tmp=$(mktemp -d "$dest/.unpack.$name.XXXXXX")
  case "$archive" in
    *.zip) unzip -q -o "$archive" -d "$tmp" || { rm -rf "$tmp"; return 1; } ;;
    *.tar.gz|*.tgz) tar -xzf "$archive" -C "$tmp" || { rm -rf "$tmp"; return 1; } ;;
    *) echo "fetch_unpack: unknown archive type: $archive" >&2; rm -rf "$tmp"; return 1 ;;
  esac
  rm -rf "$tmp/__MACOSX"
  rm -rf "${dest:?}/$name"
  if [ -d "$tmp/$name" ]; then
    mv "$tmp/$name" "$dest/$name"
    rm -rf "$tmp"
  else
    mv "$tmp" "$dest/$name"
  fi
}
