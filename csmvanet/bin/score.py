"""csmvanet-score: PESQ, STOI, CSIG/CBAK/COVL, segSNR, SI-SDR and VAD metrics of enhanced speech.

Score:  csmvanet-score --ref_scp data/test/spk1.scp --enh_scp exp/x/enhanced.scp --out_dir D
          [--noisy_scp data/test/wav.scp] [--vad_ref_scp vad.scp --vad_hyp_scp vad_prob.scp]
          [--utt2noise F --utt2snr F] [--config_file exp/x/config.yaml] [--title T]
          [--published F] [--nj N] [--report true|false] [--html_report true|false]
          [--segments data/test/segments]
Split:  add --job J --num_jobs N: score the J-th of N contiguous shares of the keys into D
          (no report, missing/extra not checked: the merge does that).
Merge:  csmvanet-score --merge D1 D2 ... --out_dir D --ref_scp ... --enh_scp ... [same options]
          joins the job folders, checks the full lists and writes the report.
Collect: csmvanet-score --collect SET=D1 SET=D2 ... --out_dir E [--title T]
          one E/RESULTS.md for several scored sets: a summary table, then each set's report.

--segments (Kaldi `utt reco start end`): --ref_scp and --noisy_scp are keyed by recording and each
utterance is scored against its segment of them; --enh_scp stays keyed by utterance.

Per-utterance files go to D/enhanced/<metric> and D/noisy/<metric> (`utt value`), problems to
D/errors, D/warnings, D/missing, D/extra; D/RESULTS.md and D/figures/ hold the report;
--html_report true adds D/report.html (+ D/listen/), a listening report (docs/listening_report.md).
Lengths: an enhanced (or noisy) file within --length_tolerance (0.02 s) of its reference's length is
trimmed to the shorter and warned; further apart it is an error (both lengths named), not scored.
Exit status 1 if any utterance could not be scored or any reference key has no enhanced file
(after everything else is written), or, before scoring, if no utterance is in both lists;
extra enhanced keys only warn.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _bool(v: str) -> bool:
    if v.lower() in ("true", "1", "yes"):
        return True
    if v.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {v!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="csmvanet-score", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref_scp", type=Path, help="clean references (spk1.scp); required unless --collect")
    p.add_argument("--enh_scp", type=Path, help="enhanced wavs (utt path); required unless --collect")
    p.add_argument("--out_dir", required=True, type=Path)
    p.add_argument("--noisy_scp", type=Path, help="noisy inputs (wav.scp): scored as the 'Noisy' row")
    p.add_argument("--segments", type=Path,
                   help="Kaldi segments: --ref_scp/--noisy_scp keyed by recording, cut per utterance")
    p.add_argument("--vad_ref_scp", type=Path, help="VAD labels (kaldiio int32 per frame)")
    p.add_argument("--vad_hyp_scp", type=Path, help="VAD probabilities (kaldiio float32 per frame)")
    p.add_argument("--vad_threshold", type=float, default=0.5)
    p.add_argument("--length_tolerance", type=float, default=None, metavar="SECONDS",
                   help="an enhanced/noisy file this close to its reference's length is trimmed to the "
                        "shorter (warned); further apart it is an error, not scored (default 0.02)")
    p.add_argument("--utt2noise", type=Path, help="utt -> noise type (Table II columns)")
    p.add_argument("--utt2snr", type=Path, help="utt -> SNR in dB (Table II rows)")
    p.add_argument("--config_file", type=Path, help="model/training config embedded in RESULTS.md")
    p.add_argument("--title", default="Enhanced", help="name of the enhanced row")
    p.add_argument("--published", type=Path,
                   help="YAML/TSV of published rows shown in Table I, marked 'published'")
    p.add_argument("--pesq_mode", choices=("wb", "nb"), default=None,
                   help="default: wide-band at 16 kHz, narrow-band at 8 kHz")
    p.add_argument("--nj", type=int, default=1, help="processes")
    p.add_argument("--job", type=int, default=None, help="split job index (1-based)")
    p.add_argument("--num_jobs", type=int, default=None, help="number of split jobs")
    p.add_argument("--merge", nargs="+", type=Path, metavar="DIR",
                   help="merge the scoring folders of split jobs into --out_dir and report")
    p.add_argument("--collect", nargs="+", metavar="SET=DIR",
                   help="write OUT_DIR/RESULTS.md from the scoring folders of several sets")
    p.add_argument("--report", type=_bool, default=True, help="write RESULTS.md (true|false)")
    p.add_argument("--figures", type=_bool, default=True, help="example PNGs in the report")
    p.add_argument("--html_report", type=_bool, default=False,
                   help="also D/report.html, a listening report (players, spectrograms, plots; offline)")
    p.add_argument("--progress", type=_bool, default=True, help="tqdm progress bar")
    p.add_argument("--scoring_protocol", default=None,
                   help="ESPnet per-metric files also written (<METRIC>_spk1, result_<metric>.txt: "
                        "csmvanet/reports/espnet_files.py); default \"PESQ STOI SI_SNR CSIG CBAK COVL SSNR\"")
    return p


def main(argv=None) -> int:
    """SIGTERM/SIGINT: temporary files removed, one line saying what was finished, exit 128 + signal."""
    from csmvanet.bin import run_interruptible

    return run_interruptible("csmvanet-score", lambda: _main(argv))


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from csmvanet.data.datadir import DataDirError
    from csmvanet.reports.results_md import write_report
    from csmvanet.metrics.scoring import LENGTH_TOLERANCE, ScoreInputs, ScoreOptions, merge_dirs, score_lists

    prog = "csmvanet-score"
    if args.collect:
        return collect(prog, args)
    for name in ("ref_scp", "enh_scp"):
        if getattr(args, name) is None:
            print(f"{prog}: --{name} is required (unless --collect)", file=sys.stderr)
            return 2
    if (args.vad_ref_scp is None) != (args.vad_hyp_scp is None):
        print(f"{prog}: --vad_ref_scp and --vad_hyp_scp go together", file=sys.stderr)
        return 2
    if (args.job is None) != (args.num_jobs is None):
        print(f"{prog}: --job and --num_jobs go together", file=sys.stderr)
        return 2
    if args.merge and args.job is not None:
        print(f"{prog}: --merge and --job exclude each other", file=sys.stderr)
        return 2
    if args.nj < 1:
        print(f"{prog}: --nj must be >= 1", file=sys.stderr)
        return 2
    if args.length_tolerance is not None and not 0 <= args.length_tolerance < float("inf"):
        print(f"{prog}: --length_tolerance must be a number of seconds >= 0, got {args.length_tolerance}",
              file=sys.stderr)
        return 2
    from csmvanet.reports.espnet_files import DEFAULT_PROTOCOL, parse_protocol, write_espnet_scoring
    try:
        protocol = parse_protocol(DEFAULT_PROTOCOL if args.scoring_protocol is None else args.scoring_protocol)
    except ValueError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2

    from csmvanet.base.outdirs import output_dir_problem

    problem = output_dir_problem(args.out_dir)   # before the log file is opened in it
    if problem:
        print(f"{prog}: error: --out_dir {args.out_dir}: {problem}", file=sys.stderr)
        return 2
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = [logging.StreamHandler(sys.stderr), logging.FileHandler(args.out_dir / "score.log", mode="w")]
    for h in handlers:
        h.setFormatter(fmt)
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)
    log = logging.getLogger(prog)
    log.info("%s", " ".join([prog] + [str(a) for a in (argv if argv is not None else sys.argv[1:])]))

    try:  # check the report inputs before spending time on scoring
        from csmvanet.base.config import load_config
        from csmvanet.data.datadir import read_scp
        from csmvanet.reports.results_md import load_published

        if args.published:
            load_published(args.published)
        if args.config_file:
            load_config(args.config_file)
        for f in (args.utt2noise, args.utt2snr):
            if f:
                read_scp(f)
    except (DataDirError, FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 1

    inputs = ScoreInputs(args.ref_scp, args.enh_scp, args.noisy_scp, args.vad_ref_scp, args.vad_hyp_scp,
                         segments=args.segments)
    opts = ScoreOptions(pesq_mode=args.pesq_mode, vad_threshold=args.vad_threshold,
                        length_tolerance=LENGTH_TOLERANCE if args.length_tolerance is None else args.length_tolerance)
    unscored: list[str] = []
    try:
        if args.merge:
            results, missing, extra, unscored = merge_dirs(args.merge, args.out_dir, inputs)
        else:
            results, missing, extra = score_lists(inputs, args.out_dir, nj=args.nj, job=args.job,
                                                  num_jobs=args.num_jobs, opts=opts,
                                                  progress=args.progress)
        is_job = args.job is not None
        errors = [r for r in results if r.error]
        for r in errors:
            log.error("%s: %s", r.utt, r.error)
        n_warn = sum(len(r.warnings) for r in results)
        if n_warn:
            log.warning("%d warnings (trimmed lengths, undefined PESQ, ...): see %s",
                        n_warn, args.out_dir / "warnings")
        if not is_job:
            if missing:
                log.error("%d reference keys have no enhanced file (see %s), e.g. %s",
                          len(missing), args.out_dir / "missing", missing[0])
            if extra:
                log.warning("%d enhanced keys are not in the reference list and are ignored "
                            "(see %s), e.g. %s", len(extra), args.out_dir / "extra", extra[0])
        if args.report and not is_job:
            path = write_report(args.out_dir, results, inputs, missing=missing, extra=extra,
                                title=args.title, config_file=args.config_file,
                                published=args.published, utt2noise=args.utt2noise,
                                utt2snr=args.utt2snr, pesq_mode=args.pesq_mode,
                                figures=args.figures, vad_threshold=args.vad_threshold,
                                html=args.html_report)
            log.info("wrote %s", path)
            print(path.read_text().split("## Table I layout", 1)[-1].split("\n\n", 2)[1])
        if not is_job:  # ESPnet's layout, for its show_enh_score.sh
            write_espnet_scoring(args.out_dir, results, read_scp(args.enh_scp), protocol)
    except (DataDirError, OSError, ValueError) as e:  # OSError: also a worker that died (WorkerDied)
        log.error("%s", e)
        return 1
    failed = bool(errors) or (not is_job and bool(missing))
    log.info("scored %d utterances, %d errors%s", len(results) - len(errors), len(errors),
             "" if is_job else f", {len(missing)} missing, {len(extra)} extra")
    return 1 if failed else 0


def collect(prog: str, args) -> int:
    """--collect SET=DIR ...: one RESULTS.md in --out_dir for the scored sets."""
    from csmvanet.reports.results_md import write_sets_report

    if args.merge or args.job is not None:
        print(f"{prog}: --collect excludes --merge and --job", file=sys.stderr)
        return 2
    sets = []
    for item in args.collect:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            print(f"{prog}: --collect {item!r}: expected SET=DIR", file=sys.stderr)
            return 2
        if not Path(folder).is_dir():
            print(f"{prog}: --collect {item}: no such folder: {folder}", file=sys.stderr)
            return 1
        sets.append((name, Path(folder)))
    names = [n for n, _ in sets]
    if len(set(names)) != len(names):
        print(f"{prog}: --collect: a set is named twice: {' '.join(names)}", file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = write_sets_report(args.out_dir, sets, args.title)
    print(f"{prog}: wrote {path} ({len(sets)} sets: {' '.join(names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
