#!/usr/bin/env bash
# Score a decoded set: PESQ, STOI, CSIG/CBAK/COVL, segSNR, SI-SDR and, where VAD labels and
# predictions exist, VAD accuracy/precision/recall/F1/AUC. Split over --nj jobs through $cmd
# (utils/run.pl or utils/slurm.pl), then merged into <enh_dir>/scoring: per-utterance files
# (enhanced/<metric>, noisy/<metric>), errors, warnings, missing, extra, RESULTS.md, figures/, and
# ESPnet's files (<METRIC>_spk1, wav_spk1, result_<metric>.txt: its show_enh_score.sh reads them).
#
# Inputs: <data_dir>/spk1.scp (clean references, required), wav.scp (noisy row), vad_labels.scp
# (vad.scp in older dirs),
# utt2noise, utt2snr (Table II), segments (then spk1.scp and wav.scp are keyed by recording and
# each utterance is scored against its segment); <enh_dir>/enhanced.scp (required), vad_prob.scp, and
# <enh_dir>/../config.yaml (embedded in the report). Exit status non-zero if any utterance could
# not be scored or has no enhanced file; the report is written first in any case. With
# --html_report true (default) also <enh_dir>/scoring/report.html, a listening report
# (docs/listening_report.md).
set -euo pipefail

nj=4
cmd=utils/run.pl
title=            # name of the enhanced row (default: the experiment folder name)
published=        # YAML/TSV with published rows for Table I (shown marked 'published')
pesq_mode=        # wb or nb (default: wb at 16 kHz, nb at 8 kHz)
figures=true      # example spectrogram/VAD PNGs in the report
html_report=true  # also <enh_dir>/scoring/report.html: listening report (players, spectrograms; offline)
report_copy=      # also write the report to this file (e.g. exp/<tag>/RESULTS.md), figure links kept valid
score_opts=       # extra csmvanet-score options (every job and the merge), e.g. "--vad_threshold 0.6"
scoring_protocol= # ESPnet's per-metric files also written (empty: csmvanet-score's default list)
help_message="Usage: $0 [--nj N] [--cmd utils/run.pl] [--title T] [--published FILE] [--pesq-mode wb|nb] [--figures true|false] [--html-report true|false] [--report-copy FILE] [--score-opts \"...\"] [--scoring_protocol \"PESQ STOI SI_SNR\"] <data_dir> <enh_dir>
  e.g. $0 --nj 8 data/test exp/csmvanet/enhance_test"

. utils/parse_options.sh

if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
enh=$2
dir=$enh/scoring

# Every check before anything is removed or written.
case "$nj" in ''|*[!0-9]*|0) echo "$0: --nj must be a positive number, not '$nj'" >&2; exit 1 ;; esac
case "$pesq_mode" in ''|wb|nb) ;; *) echo "$0: --pesq_mode must be wb or nb, not '$pesq_mode'" >&2; exit 1 ;; esac
for f in "$data/spk1.scp" "$enh/enhanced.scp"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done
if [ -n "$published" ] && [ ! -f "$published" ]; then echo "$0: --published: no such file: $published" >&2; exit 1; fi
if [ -n "$report_copy" ] && [ -d "$report_copy" ]; then
  echo "$0: --report_copy $report_copy is a directory; give a file name" >&2; exit 1
fi
[ -n "$title" ] || title=$(basename "$(cd "$enh/.." && pwd)")

opts=(--ref_scp "$data/spk1.scp" --enh_scp "$enh/enhanced.scp")
[ -f "$data/wav.scp" ] && opts+=(--noisy_scp "$data/wav.scp")
[ -f "$data/segments" ] && opts+=(--segments "$data/segments")
vad_ref=$data/vad_labels.scp
[ -f "$vad_ref" ] || vad_ref=$data/vad.scp  # older dirs
if [ -f "$vad_ref" ] && [ -f "$enh/vad_prob.scp" ]; then
  opts+=(--vad_ref_scp "$vad_ref" --vad_hyp_scp "$enh/vad_prob.scp")
fi
[ -f "$data/utt2noise" ] && opts+=(--utt2noise "$data/utt2noise")
[ -f "$data/utt2snr" ] && opts+=(--utt2snr "$data/utt2snr")
[ -f "$enh/../config.yaml" ] && opts+=(--config_file "$enh/../config.yaml")
[ -n "$pesq_mode" ] && opts+=(--pesq_mode "$pesq_mode")
opts+=(--html_report "$html_report")  # before score_opts: "--html_report false" there wins
[ -n "$scoring_protocol" ] && opts+=(--scoring_protocol "$scoring_protocol")
# shellcheck disable=SC2206  # score_opts is a list of words
opts+=($score_opts)

rm -rf "$dir/split$nj"
mkdir -p "$dir/log"
echo "$0: scoring $enh against $data with $nj jobs (logs: $dir/log/score.*.log)"
jobs_ok=true
$cmd JOB=1:"$nj" "$dir/log/score.JOB.log" \
  csmvanet-score "${opts[@]}" --out_dir "$dir/split$nj/JOB" --job JOB --num_jobs "$nj" \
    --report false --progress false || jobs_ok=false

report=(--title "$title" --figures "$figures")
[ -n "$published" ] && report+=(--published "$published")
split_dirs=()
for j in $(seq "$nj"); do split_dirs+=("$dir/split$nj/$j"); done
merge_ok=true
csmvanet-score "${opts[@]}" "${report[@]}" --out_dir "$dir" --merge "${split_dirs[@]}" \
  2> "$dir/log/merge.log" || merge_ok=false

echo "$0: wrote $dir/RESULTS.md"
if [ -n "$report_copy" ] && [ -f "$dir/RESULTS.md" ]; then
  mkdir -p "$(dirname "$report_copy")"
  rel=$(realpath --relative-to="$(dirname "$report_copy")" "$dir")
  sed "s#](figures/#]($rel/figures/#g" "$dir/RESULTS.md" > "$report_copy.tmp"
  mv "$report_copy.tmp" "$report_copy"
  echo "$0: wrote $report_copy"
fi
if ! $jobs_ok || ! $merge_ok; then
  echo "$0: some utterances were not scored or have no enhanced file: see $dir/errors, $dir/missing and $dir/log/" >&2
  exit 1
fi
