#!/usr/bin/env bash
# Stage 0 of egs/crossvoices: refuse the packages reserved for an independent evaluation of this project
# (issue 25) by name, before anything is done; then egs/voiceprompts' local/download.sh fetches
# (apt-get download), checks (sha256), unpacks (dpkg-deb -x) and decodes every package: its own five with
# its sums and decoder, the new ones with the sums of conf/packages.txt and local/decode_clips.py.
#
#   local/download.sh [--check_sha256 true] [--nj 2] <downloads> <corpus> <package>...
set -euo pipefail

check_sha256=true
nj=2
help_message="Usage: $0 [--check_sha256 true|false] [--nj 2] <downloads> <corpus> <package>..."
. utils/parse_options.sh
if [ $# -lt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)

reserved_patterns=(
  "asterisk-core-sounds-en-*" "asterisk-core-sounds-es-*" "festvox-*" "fillets-ng-data*"
  btanks-data etw-data lmms-common lincity-ng-data sonic-pi-samples scorched3d-data jconvolver-config-files
)
for pkg in "${@:3}"; do
  for pat in "${reserved_patterns[@]}"; do
    # shellcheck disable=SC2053  # a glob match on purpose
    if [[ $pkg == $pat ]]; then
      echo "$0: ERROR: '$pkg' is reserved for an independent evaluation of this project (issue 25): it must not be used for training or choosing models" >&2
      exit 1
    fi
  done
done
exec "$here/../../voiceprompts/local/download.sh" --check_sha256 "$check_sha256" --nj "$nj" \
  --sums "$here/../conf/packages.txt" --decoder "$here/decode_clips.py" "$@"
