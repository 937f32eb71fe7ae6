"""csmvanet-tune-inference: choose a model's stage-2 gain floor, input mix and VAD threshold on a
validation set.

  csmvanet-tune-inference --exp_dir E --data_dir dump/valid [--checkpoint valid.loss.ave.pth]
                          [--floors 0,0.1,...,1] [--mixes 0] [--snr_limits none,20,15]
                          [--keep_stoi [--stoi_se K]]
                          [--thresholds 0.05,...,0.95] [--criterion pesq]
                          [--segment_seconds S --overlap_seconds O]
  csmvanet-tune-inference --exp_dir E --data_dir dump/test --floors 1,0,0.3 --mixes 0,0.1 --report floors_test.md

Every pair of a floor f of --floors and a mix m of --mixes is scored: the enhanced output uses the
gain f + (1 - f) x VAD probability on the stage-1 spectrum (0: the paper's stage 2; 1: stage 1 alone)
and keeps m of the unprocessed input, (1 - m) x enhanced + m x input. With an SNR limit L of
--snr_limits (dB; none: no limit) each chunk keeps more of the input where its estimated SNR would be
above L (the model's output taken as the speech, what it removed as the noise): the cleaner the
input, the more of it is kept. Each setting is scored (mean PESQ, STOI, SI-SDR against
<data_dir>/spk1.scp) and the best by --criterion is chosen (ties: the larger floor, the smaller mix,
the higher limit); with --keep_stoi only among the settings whose mean STOI is not below the noisy
input's at any SNR (<data_dir>/utt2snr; overall without it), with --stoi_se K by K standard errors of
the per-utterance STOI difference (a margin against choosing by chance on a small validation set).
The VAD threshold of --thresholds
with the best frame F1 against <data_dir>/vad_labels.scp (frames pooled over the utterances) is
chosen too (without labels, or for a model without a VAD decoder, it stays 0.5, and inference.yaml
and the summary line say why). A mix of 1 (the input itself) is compared but never chosen. All go
to E/inference.yaml, with the table of every value tried; loading E (csmvanet-enhance --model E,
Enhancer.from_pretrained) and packing it (csmvanet-pack) then use them as defaults.
--segment_seconds/--overlap_seconds: the chunking to enhance with (default: the model's, else 8 s /
1 s); when given, it is stored in inference.yaml too and becomes the model's default.
Every pair is one enhancement of every utterance, as decoding does it, with the network run once per
chunk for all of them. The tables also give the unprocessed input's scores and, where the data dir
has utt2snr, PESQ / STOI by SNR.

--report FILE compares the pairs on a data dir (e.g. the test set) and writes the table to FILE;
nothing is chosen and inference.yaml is left as it is.
An utterance that cannot be read or enhanced is named and left out; exit 1 if any was.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _grid(key: str):
    """argparse type: comma-separated values of the inference setting ``key`` (its own rule checks each)."""
    def parse(text: str) -> list:
        from csmvanet.experiment.inference_settings import parse_setting

        try:
            vals = [parse_setting(key, v) for v in text.split(",") if v.strip()]
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"comma-separated values: {e}") from None
        if not vals:
            raise argparse.ArgumentTypeError(f"expected comma-separated values, got {text!r}")
        return vals
    parse.__name__ = key
    return parse


def _one(key: str):
    """argparse type: one value of the inference setting ``key``."""
    def parse(text: str):
        return _grid(key)(text.replace(",", " "))[0]
    parse.__name__ = key
    return parse


def main(argv=None) -> int:
    from csmvanet.infer.tuning import CRITERIA, DEFAULT_FLOORS, DEFAULT_MIXES, DEFAULT_THRESHOLDS

    p = argparse.ArgumentParser(prog="csmvanet-tune-inference", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", required=True, help="experiment dir (config.yaml + weights)")
    p.add_argument("--data_dir", required=True, help="validation data dir: wav.scp, spk1.scp, vad_labels.scp")
    p.add_argument("--checkpoint", default=None, help="weights file name inside the experiment dir")
    p.add_argument("--floors", type=_grid("vad_floor"), default=list(DEFAULT_FLOORS))
    p.add_argument("--mixes", type=_grid("input_mix"), default=list(DEFAULT_MIXES), help="input_mix values")
    p.add_argument("--snr_limits", type=_grid("snr_limit"), default=[None],
                   help="per-chunk output SNR limits in dB (none: no limit), e.g. none,20,15")
    p.add_argument("--keep_stoi", action="store_true",
                   help="choose among the settings that keep STOI at the noisy input's at every SNR")
    p.add_argument("--stoi_se", type=float, default=0.0,
                   help="with --keep_stoi: by this many standard errors (default 0: the means alone)")
    p.add_argument("--thresholds", type=_grid("vad_threshold"), default=list(DEFAULT_THRESHOLDS))
    p.add_argument("--criterion", choices=CRITERIA, default="pesq")
    p.add_argument("--segment_seconds", type=_one("segment_seconds"), default=None, help="chunk length (stored when given)")
    p.add_argument("--overlap_seconds", type=_one("overlap_seconds"), default=None, help="chunk overlap (with --segment_seconds)")
    p.add_argument("--report", default=None, help="compare --floors on --data_dir into this file; choose nothing")
    p.add_argument("--no_progress", action="store_true")
    args = p.parse_args(argv)
    if args.overlap_seconds is not None and args.segment_seconds is None:
        p.error("--overlap_seconds needs --segment_seconds")

    from csmvanet.infer.enhancer import EnhanceError, Enhancer
    from csmvanet.infer.tuning import choose_settings, settings_table, write_settings

    def say(msg: str) -> None:
        print(f"csmvanet-tune-inference: {msg}", file=sys.stderr)

    try:
        enh = Enhancer.from_pretrained(args.exp_dir, checkpoint=args.checkpoint,
                                       segment_seconds=args.segment_seconds, overlap_seconds=args.overlap_seconds)
        found = choose_settings(enh, args.data_dir, floors=args.floors, mixes=args.mixes,
                                snr_limits=args.snr_limits, thresholds=args.thresholds,
                                criterion=args.criterion, keep_stoi=args.keep_stoi, stoi_se=args.stoi_se,
                                progress=not args.no_progress, say=say)
        table = settings_table(found, chosen=args.report is None)
        if args.report:
            from csmvanet.base.atomic_files import atomic_write_text

            path = Path(args.report)
            atomic_write_text(path, f"vad_floor compared on {args.data_dir} ({found.num_utts} utterances; "
                                    f"{args.exp_dir}, {enh.metadata.get('checkpoint', '')}; segments "
                                    f"{enh.segment_seconds:g} s, overlap {enh.overlap_seconds:g} s):\n\n{table}\n")
        else:
            segment = None if args.segment_seconds is None else (enh.segment_seconds, enh.overlap_seconds)
            path = write_settings(args.exp_dir, found, checkpoint=enh.metadata.get("checkpoint", ""),
                                  data_dir=args.data_dir, segment=segment)
    except (EnhanceError, ValueError, OSError) as e:
        say(f"error: {e}")
        return 1
    print(table)
    if args.report:
        say(f"{found.num_utts} utterance(s): {len(found.grid)} setting(s) -> {path}")
    else:
        limit = "none" if found.snr_limit is None else f"{found.snr_limit:g} dB"
        threshold = (f"vad_threshold {found.vad_threshold:g}"
                     + (f" (not chosen: {found.threshold_note})" if found.threshold_note else ""))
        say(f"{found.num_utts} utterance(s): vad_floor {found.vad_floor:g}, input_mix {found.input_mix:g}, "
            f"snr_limit {limit}, {threshold} -> {path}")
    if found.failed:
        say(f"{len(found.failed)} utterance(s) left out (listed above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
