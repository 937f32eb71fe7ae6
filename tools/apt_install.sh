#!/usr/bin/env bash
# Installs Debian packages for the tests that need them (tools/setup_slurm.sh, tools/setup_chromium.sh):
#
#   tools/apt_install.sh PACKAGE...
#
# apt-get install --no-install-recommends; when that fails, apt-get update and once more.
# Exit status 0 when installed, 2 when they cannot be installed here (not root, no apt-get, the
# install failed; the reason is the last line on stderr).
set -euo pipefail

say() { echo "apt_install: $*" >&2; }
cannot_install() { say "error: $*"; exit 2; }

[ $# -gt 0 ] || { say "usage: $0 PACKAGE..."; exit 1; }
[ "$(id -u)" = 0 ] || cannot_install "installing $* needs root"
command -v apt-get >/dev/null || cannot_install "no apt-get to install $* with"
say "installing $*"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "$@" >/dev/null; then
  say "install failed; running apt-get update and retrying"
  apt-get update -q >/dev/null || cannot_install "apt-get update failed"
  apt-get install -y -q --no-install-recommends "$@" >/dev/null || cannot_install "apt-get install $* failed"
fi
