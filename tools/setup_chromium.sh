#!/usr/bin/env bash
# Installs a headless-capable Chromium for the browser test of the listening reports
# (test/test_report_browser.py) and prints the path of the browser on its last line.
# Debian/Ubuntu, as root. Nothing is installed when a browser is already there.
#
#   tools/setup_chromium.sh
#
# Exit status: 0 with the path printed, 2 when no browser can be installed here (not root, no
# apt-get, the package install failed), 1 for any other failure.
set -euo pipefail

say() { echo "setup_chromium: $*" >&2; }
cannot_install() { say "error: $*"; exit 2; }

find_browser() {
  local b
  for b in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$b" >/dev/null; then command -v "$b"; return 0; fi
  done
  return 1
}

if path=$(find_browser); then echo "$path"; exit 0; fi
[ "$(id -u)" = 0 ] || cannot_install "no chromium and not root: install the Debian package 'chromium' (apt-get install chromium)"
"$(dirname "${BASH_SOURCE[0]}")/apt_install.sh" chromium || exit $?
path=$(find_browser) || cannot_install "apt-get installed chromium but no chromium is on the PATH"
echo "$path"
