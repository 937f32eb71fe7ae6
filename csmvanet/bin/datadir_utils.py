"""The logic behind utils/{validate_data_dir,fix_data_dir,split_data,subset_data_dir,copy_data_dir,
combine_data}.sh, utils/split_scp.pl and utils/data/{perturb_data_dir_speed,get_utt2dur,
resample_data_dir}.sh, with Kaldi's options:

    python -m csmvanet.bin.datadir_utils <tool> [options] args...

Options are spelt with dashes or underscores (--utt-extra-files, --utt_extra_files), as Kaldi's
parse_options.sh allows, and take their value as ``--opt value`` or ``--opt=value``. A user error is
one line on stderr naming the file or option, exit status 1, nothing changed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from csmvanet.data.datadir import DataDirError


class _Parser(argparse.ArgumentParser):
    def parse_args(self, args=None, namespace=None):
        # Kaldi: `--utt-suffix -x` takes "-x" as the value; argparse would read it as an option.
        args, out = list(args or []), []
        while args:
            tok = args.pop(0)
            action = self._option_string_actions.get(tok)
            if action is not None and action.nargs is None and args and action.option_strings[0] != "-h":
                tok = f"{tok}={args.pop(0)}"
            out.append(tok)
        return super().parse_args(out, namespace)

    def error(self, message):  # one line, exit 1 (argparse's default is usage + exit 2)
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(1)


def _opt(p, name: str, **kw):
    names = [f"--{name}"] + ([f"--{name.replace('-', '_')}"] if "-" in name else [])
    p.add_argument(*names, **kw)


def _bool(v: str) -> bool:
    if v not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"takes true or false, not '{v}'")
    return v == "true"


def _validate(argv):
    p = _Parser(prog="validate_data_dir.sh", description="Check a data dir (csmvanet.data.validate_dir).")
    _opt(p, "fs", type=int, help="expected sample rate of every audio entry")
    _opt(p, "no-audio-check", action="store_true", help="do not read the audio (existence still checked)")
    _opt(p, "check-pipes", action="store_true", help="run the `cmd |` entries to check them")
    _opt(p, "require", default="wav.scp utt2spk spk2utt",
         help='files that must exist (default "wav.scp utt2spk spk2utt", as Kaldi)')
    _opt(p, "stft-config", help="training config whose stft: section defines the VAD frames")
    _opt(p, "no-wav", action="store_true", help="(Kaldi) wav.scp is not required")
    _opt(p, "no-spk-sort", action="store_true", help="(Kaldi) utt2spk need not be sorted by speaker too")
    for flag in ("no-feats", "no-text", "non-print"):
        _opt(p, flag, action="store_true", help="(Kaldi) accepted; nothing of ours needs it")
    p.add_argument("data_dir")
    a = p.parse_args(argv)
    from csmvanet.data.validate_dir import validate_data_dir

    cfg = None
    if a.stft_config:
        from csmvanet.base.config import load_config
        from csmvanet.audio.stft import STFTConfig

        cfg = STFTConfig.from_dict(load_config(a.stft_config).get("stft"))
    required = [f for f in a.require.split() if not (a.no_wav and f == "wav.scp")]
    res = validate_data_dir(a.data_dir, fs=a.fs, check_audio=not a.no_audio_check, check_pipes=a.check_pipes,
                            stft_cfg=cfg, required=required, spk_sort=not a.no_spk_sort)
    for n in res.notices:
        print(f"validate_data_dir: notice: {n}", file=sys.stderr)
    if res.ok:
        print(f"validate_data_dir: {res.summary}")
        return 0
    for prob in res.problems:
        print(f"validate_data_dir: {prob}", file=sys.stderr)
    print(f"validate_data_dir: {a.data_dir}: not valid ({len(res.problems)} problem line(s) above)",
          file=sys.stderr)
    return 1


def _fix(argv):
    from csmvanet.data.fix_dir import DEFAULT_MAX_DROP, fix_data_dir

    p = _Parser(prog="fix_data_dir.sh", description="Repair a data dir in place (csmvanet.data.fix_dir).")
    _opt(p, "utt-extra-files", default="", help='(Kaldi/ESPnet) more per-utterance files, e.g. "text_spk1"')
    _opt(p, "max-drop-fraction", type=float, default=DEFAULT_MAX_DROP,
         help=f"fail (nothing changed) if more than this fraction of the utterances would go (default "
              f"{DEFAULT_MAX_DROP})")
    p.add_argument("data_dir")
    a = p.parse_args(argv)
    res = fix_data_dir(a.data_dir, utt_extra_files=a.utt_extra_files.split(),
                       max_drop_fraction=a.max_drop_fraction)
    for r in res.reasons:
        print(f"fix_data_dir: {r}")
    if not res.changed:
        print(f"fix_data_dir: {a.data_dir}: kept all {res.kept} utterances; nothing to change")
    else:
        print(f"fix_data_dir: {a.data_dir}: kept {res.kept} of {res.before} utterances, removed {res.removed}"
              f" (old files in {res.backup})")
    return 0


def _split_data(argv):
    from csmvanet.data.dir_ops import split_data

    p = _Parser(prog="split_data.sh", description="data/x -> data/x/splitN/{1..N}, per speaker unless "
                                                 "--per-utt (then data/x/splitNutt/{1..N}).")
    p.add_argument("--per-utt", action="store_true", help="split per utterance into splitNutt")
    p.add_argument("--per-spk", action="store_true", help="per speaker (the default; accepted)")
    p.add_argument("data_dir")
    p.add_argument("num_parts")
    a = p.parse_args(argv)
    n = _positive(p, a.num_parts, "the number of parts")
    out = split_data(a.data_dir, n, per_utt=a.per_utt)
    print(f"split_data: {a.data_dir} -> {out}/{{1..{n}}}")
    return 0


def _positive(p, text: str, what: str) -> int:
    if not text.isdigit() or int(text) < 1:
        p.error(f"{what} must be a positive integer, not '{text}'")
    return int(text)


def _split_scp(argv):
    from csmvanet.data.datadir import read_scp
    from csmvanet.base.atomic_files import atomic_write_text

    usage = ("split_scp.pl [-j N k [--one-based]] [--utt2spk=FILE] in.scp [out.scp] | "
             "split_scp.pl [--utt2spk=FILE] in.scp out.1.scp ... out.N.scp")
    num_jobs = job = None
    one_based = False
    utt2spk_file = None
    args = list(argv)
    while args and args[0].startswith("-") and args[0] != "-":
        o = args.pop(0)
        if o == "-j" and len(args) >= 2:
            num_jobs, job = args.pop(0), args.pop(0)
        elif o == "--one-based":
            one_based = True
        elif o.startswith("--utt2spk="):
            utt2spk_file = o.split("=", 1)[1]
        elif o == "--utt2spk" and args:
            utt2spk_file = args.pop(0)
        elif o in ("-h", "--help"):
            print(f"Usage: {usage}")
            return 0
        else:
            raise DataDirError(f"split_scp.pl: unknown option {o} (usage: {usage})")
    if num_jobs is not None:
        if not num_jobs.isdigit() or not job.isdigit() or int(num_jobs) < 1:
            raise DataDirError(f"split_scp.pl: -j needs two integers N k, not '{num_jobs} {job}'")
        num_jobs, job = int(num_jobs), int(job) - (1 if one_based else 0)
        if not 0 <= job < num_jobs:
            raise DataDirError(f"split_scp.pl: job {job + one_based} is not in {'1..N' if one_based else '0..N-1'}"
                               f" for N={num_jobs}")
        if not 1 <= len(args) <= 2:
            raise DataDirError(f"split_scp.pl: usage: {usage}")
        n_parts = num_jobs
    elif len(args) < 2:
        raise DataDirError(f"split_scp.pl: usage: {usage}")
    else:
        n_parts = len(args) - 1
    inp = Path(args[0])
    if not inp.is_file():
        raise DataDirError(f"{inp}: no such file")
    lines = [ln for ln in inp.read_text(errors="surrogateescape").splitlines(keepends=True) if ln.strip()]
    lines = [ln if ln.endswith("\n") else ln + "\n" for ln in lines]
    keys = [ln.split()[0] for ln in lines]
    if len(set(keys)) != len(keys) and utt2spk_file:
        raise DataDirError(f"{inp}: duplicate keys")
    utt2spk = read_scp(utt2spk_file) if utt2spk_file else None
    index = {k: i for i, k in enumerate(keys)}
    try:
        parts = _split_lines(keys, n_parts, utt2spk)
    except DataDirError as e:
        raise DataDirError(f"{inp}: {e}") from None
    if utt2spk is None:
        texts = ["".join(lines[i] for i in part) for part in parts]
    else:
        missing = [k for k in keys if k not in utt2spk]
        if missing:
            raise DataDirError(f"{inp}: key '{missing[0]}' is not in {utt2spk_file}")
        texts = ["".join(lines[index[k]] for k in part) for part in parts]
    if num_jobs is not None:
        if len(args) == 2:
            atomic_write_text(args[1], texts[job])
        else:
            sys.stdout.write(texts[job])
        return 0
    for out, text in zip(args[1:], texts):
        atomic_write_text(out, text)
    return 0


def _split_lines(keys, n_parts, utt2spk):
    from csmvanet.data.dir_ops import split_keys

    if utt2spk is None:
        return split_keys(list(range(len(keys))), n_parts)
    return split_keys(keys, n_parts, utt2spk)


def _subset(argv):
    from csmvanet.data.dir_ops import subset_data_dir

    usage = ("subset_data_dir.sh [--first|--last|--per-spk] <srcdir> <num-utt> <destdir> | "
             "subset_data_dir.sh --utt-list <file> <srcdir> <destdir> | "
             "subset_data_dir.sh --spk-list <file> <srcdir> <destdir>")
    how: dict = {}
    args = list(argv)
    if args and args[0] in ("-h", "--help"):
        print(f"Usage: {usage}")
        return 0
    if args and args[0] in ("--first", "--last", "--per-spk"):
        how[args.pop(0)[2:].replace("-", "_")] = True
    elif args and args[0] in ("--utt-list", "--utt_list", "--spk-list", "--spk_list") and len(args) > 1:
        name = args.pop(0)[2:].replace("-", "_")
        how[name] = args.pop(0)
    elif args and args[0].startswith("-"):
        raise DataDirError(f"subset_data_dir.sh: invalid option '{args[0]}' (--speakers and --shortest are "
                           f"not supported; usage: {usage})")
    want = 2 if ("utt_list" in how or "spk_list" in how) else 3
    if len(args) != want:
        raise DataDirError(f"subset_data_dir.sh: usage: {usage}")
    if want == 3:
        if not args[1].isdigit() or int(args[1]) < 1:
            raise DataDirError(f"subset_data_dir.sh: <num-utt> must be a positive integer, not '{args[1]}'")
        how["num"] = int(args[1])
    src, dest = args[0], args[-1]
    before, after = subset_data_dir(src, dest, **how)
    print(f"subset_data_dir.sh: reducing #utt from {before} to {after}")
    return 0


def _copy(argv):
    from csmvanet.data.dir_ops import copy_data_dir

    p = _Parser(prog="copy_data_dir.sh", description="Copy a data dir, optionally renaming utterances "
                                                    "and speakers (prefix + id + suffix).")
    for o in ("utt-prefix", "utt-suffix", "spk-prefix", "spk-suffix"):
        _opt(p, o, default="")
    _opt(p, "validate-opts", default="", help="(Kaldi) accepted; the copy is valid by construction")
    p.add_argument("src")
    p.add_argument("dest")
    a = p.parse_args(argv)
    n = copy_data_dir(a.src, a.dest, utt_prefix=a.utt_prefix, utt_suffix=a.utt_suffix,
                      spk_prefix=a.spk_prefix, spk_suffix=a.spk_suffix)
    print(f"copy_data_dir.sh: copied data from {a.src} to {a.dest} ({n} utterances)")
    return 0


def _combine(argv):
    from csmvanet.data.dir_ops import combine_data

    p = _Parser(prog="combine_data.sh", description="Combine data dirs into a new one (duplicate "
                                                   "utterance ids are refused).")
    _opt(p, "extra-files", default="", help="more per-utterance files to combine")
    _opt(p, "skip-fix", type=_bool, default=False, help="(Kaldi) accepted; the result needs no fix")
    p.add_argument("dest")
    p.add_argument("srcs", nargs="+")
    a = p.parse_args(argv)
    n, notices = combine_data(a.dest, a.srcs, a.extra_files.split())
    for line in notices:
        print(f"combine_data.sh: {line}")
    print(f"combine_data.sh: combined {len(a.srcs)} data dirs into {a.dest} ({n} utterances)")
    return 0


def _pipe_tool() -> str:
    import shlex

    return f"{shlex.quote(sys.executable)} -m csmvanet.bin.audio_pipe"


def _perturb_speed(argv):
    from csmvanet.data.perturb_dir import perturb_speed

    p = _Parser(prog="perturb_data_dir_speed.sh", description="Speed-perturbed copy of a data dir (Kaldi's "
                "interface; audio read through csmvanet.bin.audio_pipe --speed pipes).")
    _opt(p, "include-spk-prefix", type=_bool, default=True, help="(Kaldi) sp<F>- prefixes (true) or "
         "-sp<F> suffixes on utterance ids (false)")
    p.add_argument("factor")
    p.add_argument("src")
    p.add_argument("dest")
    a = p.parse_args(argv)
    n, notices = perturb_speed(a.src, a.dest, a.factor, _pipe_tool(), include_spk_prefix=a.include_spk_prefix)
    for line in notices:
        print(f"perturb_data_dir_speed.sh: {line}")
    print(f"perturb_data_dir_speed.sh: generated speed-perturbed version of data in {a.src}, in {a.dest} "
          f"({n} utterances)")
    return 0


def _utt2dur(argv):
    from csmvanet.data.datadir import read_scp, write_scp
    from csmvanet.data.durations import compute_utt2dur

    p = _Parser(prog="get_utt2dur.sh", description="Write data/x/utt2dur (Kaldi's get_utt2dur.sh).")
    _opt(p, "frame-shift", type=float, default=0.01, help="(Kaldi) seconds per frame for utt2num_frames")
    for o in ("nj", "cmd", "read-entire-file"):
        _opt(p, o, default=None, help="(Kaldi) accepted; headers are read in this process")
    p.add_argument("data_dir")
    a = p.parse_args(argv)
    d = Path(a.data_dir)
    if (d / "utt2dur").is_file() and (d / "utt2spk").is_file() and \
            len(read_scp(d / "utt2dur")) == len(read_scp(d / "utt2spk")) > 0:
        print(f"get_utt2dur.sh: {d / 'utt2dur'} already exists with the expected length; not recomputed")
        return 0
    durs, where = compute_utt2dur(d, a.frame_shift)
    write_scp(d / "utt2dur", durs)
    print(f"get_utt2dur.sh: computed {d / 'utt2dur'} from {where} ({len(durs)} utterances)")
    return 0


def _resample(argv):
    from csmvanet.data.perturb_dir import resample_in_place

    p = _Parser(prog="resample_data_dir.sh", description="Read every audio list of a data dir through a "
                "resampling pipe (Kaldi's resample_data_dir.sh; csmvanet.bin.audio_pipe --rate).")
    p.add_argument("freq")
    p.add_argument("data_dir")
    a = p.parse_args(argv)
    rate = _positive(p, a.freq, "the sample rate")
    for line in resample_in_place(a.data_dir, rate, _pipe_tool()):
        print(f"resample_data_dir.sh: {line}")
    print(f"resample_data_dir.sh: {a.data_dir}: audio lists now read at {rate} Hz")
    return 0


NAMES = {"validate": "validate_data_dir.sh", "fix": "fix_data_dir.sh", "split_data": "split_data.sh",
         "split_scp": "split_scp.pl", "subset": "subset_data_dir.sh", "copy": "copy_data_dir.sh",
         "combine": "combine_data.sh", "perturb_speed": "perturb_data_dir_speed.sh",
         "utt2dur": "get_utt2dur.sh", "resample": "resample_data_dir.sh"}
TOOLS = {"validate": _validate, "fix": _fix, "split_data": _split_data, "split_scp": _split_scp,
         "subset": _subset, "copy": _copy, "combine": _combine, "perturb_speed": _perturb_speed,
         "utt2dur": _utt2dur, "resample": _resample}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):  # ids and paths that are not UTF-8 are printed as their bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    if not argv or argv[0] not in TOOLS:
        print(f"usage: python -m csmvanet.bin.datadir_utils {{{','.join(TOOLS)}}} args...", file=sys.stderr)
        return 1
    tool = argv.pop(0)
    try:
        return TOOLS[tool](argv)
    except (DataDirError, ValueError, OSError) as e:
        msg = str(e)
        prefix = f"{NAMES[tool]}: "
        print(msg if msg.startswith(prefix) else prefix + msg, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
