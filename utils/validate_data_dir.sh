#!/usr/bin/env bash
# Checks a data dir (logic: csmvanet.datadir.validate_data_dir). Exit 0 with a one-line summary if
# it is valid; else exit 1 after listing each problem on stderr, naming the file and the key.
#
#   utils/validate_data_dir.sh [options] data/x
#
# Options:
#   --fs N               expected sample rate of every audio entry (default: any, but wav.scp and
#                        spk1.scp must agree per utterance)
#   --no-audio-check     do not read the audio (file existence is still checked)
#   --check-pipes        run the `cmd |` entries to check them (skipped by default)
#   --require "F1 F2"    files that must exist (default "wav.scp")
#   --stft-config FILE   training config whose stft: section defines the VAD frames
#                        (default: csmvanet.features.STFTConfig())
#
# Checked: files sorted (C locale), no duplicate keys, the same keys in wav.scp and every other
# per-utterance file (spk1.scp, vad.scp, utt2spk, utt2num_samples, noise1.scp, utt2noise, utt2snr,
# ...), spk2utt consistent with utt2spk, audio files exist and are readable and mono, sample rates
# (vs --fs and between wav.scp and spk1.scp), noisy and clean lengths equal, utt2num_samples equal to
# the audio, VAD labels int32 0/1 with STFTConfig.num_frames(num_samples) frames.
set -euo pipefail

usage="Usage: $0 [--fs N] [--no-audio-check] [--check-pipes] [--require \"wav.scp spk1.scp\"] [--stft-config FILE] <data-dir>"
fs=""; check_audio=1; check_pipes=0; require="wav.scp"; stft_config=""
while [ $# -gt 0 ]; do
  case "$1" in
    --fs) fs=${2:?--fs needs a value}; shift 2 ;;
    --fs=*) fs=${1#*=}; shift ;;
    --no-audio-check) check_audio=0; shift ;;
    --check-pipes) check_pipes=1; shift ;;
    --require) require=${2?--require needs a value}; shift 2 ;;
    --require=*) require=${1#*=}; shift ;;
    --stft-config) stft_config=${2:?--stft-config needs a file}; shift 2 ;;
    --stft-config=*) stft_config=${1#*=}; shift ;;
    -h|--help) echo "$usage"; exit 0 ;;
    --) shift; break ;;
    -*) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "$usage" >&2; exit 1; }
case "$fs" in ''|[1-9]*) ;; *) echo "$0: --fs needs a sample rate in Hz, not '$fs'" >&2; exit 1 ;; esac
case "$fs" in *[!0-9]*) echo "$0: --fs needs a sample rate in Hz, not '$fs'" >&2; exit 1 ;; esac

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
python=${CSMVANET_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/tools/venv/bin/python" ]; then python=$root/tools/venv/bin/python; else python=python3; fi
fi

exec "$python" - "$1" "$fs" "$check_audio" "$check_pipes" "$require" "$stft_config" <<'PY'
import sys

from csmvanet.datadir import validate_data_dir

data, fs, check_audio, check_pipes, require, stft_config = sys.argv[1:]
cfg = None
if stft_config:
    from csmvanet.config import load_config
    from csmvanet.features import STFTConfig

    cfg = STFTConfig.from_dict(load_config(stft_config).get("stft"))
res = validate_data_dir(data, fs=int(fs) if fs else None, check_audio=check_audio == "1",
                        check_pipes=check_pipes == "1", stft_cfg=cfg, required=require.split())
if res.ok:
    print(f"validate_data_dir: {res.summary}")
    sys.exit(0)
for p in res.problems:
    print(f"validate_data_dir: {p}", file=sys.stderr)
print(f"validate_data_dir: {data}: not valid ({len(res.problems)} problem line(s) above)", file=sys.stderr)
sys.exit(1)
PY
