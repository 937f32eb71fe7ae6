# Command-line options for recipe scripts, Kaldi style. Source it after setting the defaults:
#
#   stage=0
#   use_gpu=false
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh
#
# Then `--stage 3` (or `--stage=3`) sets stage=3 and `--use-gpu true` sets use_gpu=true: dashes in
# the option name become underscores and the variable must already exist (an unknown option is an
# error naming it). A variable whose current value is true or false only accepts true or false.
# `--config FILE` sources FILE (shell assignments) at that point of the command line, so later
# options override it. `--help` / `-h` prints $help_message (if set) and exits 0. Parsing stops at
# the first argument that is not an option, or after `--`; the remaining arguments are left in "$@".
# Works under `set -euo pipefail`. Our own implementation of the Kaldi semantics.

__po_die() {
  echo "$0: $* (see $0 --help)" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      if [ -n "${help_message:-}" ]; then
        printf '%s\n' "$help_message"
      else
        echo "$0: no help message for this script" >&2
      fi
      exit 0
      ;;
    --)
      shift
      break
      ;;
    --*=*)
      __po_name=${1%%=*}
      __po_value=${1#*=}
      shift
      ;;
    --?*)
      __po_name=$1
      if [ $# -lt 2 ]; then __po_die "option $__po_name needs a value"; fi
      __po_value=$2
      shift 2
      ;;
    *)
      break
      ;;
  esac
  __po_name=${__po_name#--}
  if [ "$__po_name" = config ]; then
    if [ ! -f "$__po_value" ]; then __po_die "--config: no such file: $__po_value"; fi
    # shellcheck disable=SC1090
    . "$__po_value"
    continue
  fi
  __po_var=${__po_name//-/_}
  case "$__po_var" in
    ''|[0-9]*|*[!A-Za-z0-9_]*) __po_die "invalid option --$__po_name" ;;
  esac
  # The variable must already be set (declared with a default before sourcing this file).
  if ! declare -p "$__po_var" >/dev/null 2>&1; then
    __po_die "unknown option --$__po_name: no variable '$__po_var' in this script"
  fi
  __po_old=${!__po_var}
  if [ "$__po_old" = true ] || [ "$__po_old" = false ]; then
    if [ "$__po_value" != true ] && [ "$__po_value" != false ]; then
      __po_die "option --$__po_name takes true or false, not '$__po_value'"
    fi
  fi
  printf -v "$__po_var" '%s' "$__po_value"
done
unset __po_name __po_value __po_var __po_old
unset -f __po_die
true
