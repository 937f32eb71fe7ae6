"""csmvanet-enhance: denoise audio files of any length with a trained CSM-VANet.

  csmvanet-enhance INPUT... --output_dir D                  (the bundled model)
  csmvanet-enhance --model MODEL INPUT... --output_dir D
  csmvanet-enhance --model MODEL --wav_scp data/test/wav.scp --output_dir D [--out_scp enh.scp]
                   [--vad_dir V] [--segments data/test/segments]
  csmvanet-enhance --list_models
  csmvanet-enhance --model CAUSAL_MODEL --stream - - [--vad_events FILE|stderr]   (live, a pipe)

MODEL: an experiment dir (config.yaml + valid.loss.ave.pth, or the first present of
valid.*.ave.pth, valid.loss.best.pth, valid.*.best.pth, checkpoint_last.pth), a weights file in
one, a packed model (csmvanet-pack), or the name of a model shipped with the package
(--list_models). Without --model the first bundled model is used: a small CPU-trained model
(egs/voiceprompts; its model card is csmvanet/pretrained/README.md), not the paper's.

--vad_floor F: the stage-2 gain floor + (1 - floor) x VAD probability on the stage-1 spectrum (0: the
paper's stage 2, 1: stage 1 alone, the VAD gate off). Default: the floor chosen on validation and
stored with the model (csmvanet-tune-inference), else the config's vad_floor. --input_mix M: the
output is (1 - M) x enhanced + M x input (default: the model's, else 0). --snr_limit L (dB): each
segment keeps more of the input where needed so that its estimated SNR (the model's output taken as
the speech, what it removed as the noise) is not above L: clean input is changed less (default: the
model's, else none; `none` switches a stored limit off).

INPUT: audio files (any format soundfile reads) and folders (every file below, recursively, in a
format this libsndfile reads: wav, flac, ogg/opus, mp3 (libsndfile >= 1.1), aiff, ...). Every other
file of a folder, and every name starting with '.', is listed as skipped, with the reason.
Outputs mirror the inputs: D/<file name>, D/<path relative to the folder>, and D/<utt>.<fmt> exactly
for --wav_scp entries (paths, `cmd |` pipes, ark offsets; a key with '/', a leading '.', white space
or control characters is refused, naming it). The format follows the input suffix (.wav or .flac;
others give .wav) unless --output_format is given; 16-bit PCM unless --output_subtype.
--segments (Kaldi `utt reco start end`, seconds; --wav_scp then keyed by recording): every utterance
of it is an input, D/<utt>.<fmt> holds its segment only (same length and rate); an utterance whose
recording is not in --wav_scp is reported in one line naming it and skipped.

Any sample rate: resampled (soxr VHQ) to the model's rate and back; output length and rate equal the
input's. Multi-channel (--channels): `each` (default) enhances every channel on its own and keeps
the channel count; `mix` averages the channels and writes mono; `error` refuses such files.
Long files are processed in overlapping segments (--segment_seconds, --overlap_seconds) with
memory independent of the file length. Peaks: a soft limiter above 0.9 keeps |x| < 0.99, no
clipping. Input peaks above 1.0 (float files) are normalised before the network and restored after
(this needs --output_subtype FLOAT; other subtypes refuse such a file, naming it).

--vad_dir V writes V/vad_prob.ark + V/vad_prob.scp (kaldiio float32 speech probability per frame,
hop 100 at 16 kHz; multi-channel: the maximum over channels), V/segments (Kaldi) and V/vad.rttm,
with --vad_threshold (default: the threshold stored with the model, else 0.5), --min_speech and
--min_silence (seconds).

--report R writes a listening report R/index.html (one page per input: players for input, output and
residual, spectrograms, VAD track and segments, settings, real-time factor and a "speech removed?"
list of stretches where the VAD says speech and the output removed >= --removed_share (default 0.9)
of the input's energy; docs/listening_report.md); without --vad_dir the VAD outputs go to R/vad.
--residual_dir X writes the residual input - output of every input to X/<output name>.

--backend runs the network with torch (default), onnxruntime (pip install 'csmvanet[onnx]'; the
network is exported in memory, or read from --onnx FILE written by csmvanet-export from the same
weights), torch-int8 (Conformer linear layers dynamically quantised to int8) or torch-bf16 (CPU
autocast to bfloat16; only on CPUs with native bf16: AVX512-BF16 or AMX); these three run on the CPU
with --num_threads threads. Chunking, VAD outputs and input checks are the
same for every backend.

--stream IN OUT (IN, OUT: files or '-' for standard input/output) enhances as the samples come, with
a causal model (model.causal: true): WAV in gives WAV out (header first), raw PCM in (--raw_rate,
--raw_format, --raw_channels) gives raw PCM out, at the input's rate and sample format; VAD events
(speech_start/speech_end T) go to --vad_events (a file, or stderr); the output equals file mode of
the same model (csmvanet.infer.pipe_stream; docs/streaming.md).

A bad input (unreadable, empty, no samples, shorter than one 25 ms frame, NaN/Inf samples, not
audio, ...) is reported in one line naming it and skipped; the others are processed; the exit
status is 1 if any input failed. No output file is ever left half-written: SIGTERM or SIGINT
removes the temporary files, prints one line saying what was finished and exits 143 or 130;
temporary files left by SIGKILL ('.*.tmp.*') are removed by the next run into the same folders.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings


def _setting(key: str):
    """argparse type of the inference setting ``key``: checked by the settings' own rule."""
    def parse(text: str):
        from csmvanet.experiment.inference_settings import parse_setting

        try:
            return parse_setting(key, text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = key   # argparse names the type in "invalid <name> value"
    return parse


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return v


def main(argv=None) -> int:
    """SIGTERM/SIGINT: temporary files removed, one line saying what was finished, exit 128 + signal."""
    from csmvanet.bin import run_interruptible

    return run_interruptible("csmvanet-enhance", lambda: _main(argv))


def _main(argv=None) -> int:
    from csmvanet.experiment.inference_settings import BACKENDS

    p = argparse.ArgumentParser(prog="csmvanet-enhance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="audio files or folders")
    p.add_argument("--model", default=None,
                   help="experiment dir, weights file in one, packed model or bundled model name "
                        "(default: the first bundled model, see --list_models)")
    p.add_argument("--list_models", action="store_true",
                   help="list the models shipped with the package and exit (status 1 if one is missing or corrupt)")
    p.add_argument("--checkpoint", default=None, help="weights file name inside the experiment dir")
    p.add_argument("--wav_scp", default=None, help="Kaldi wav.scp of inputs (outputs D/<utt>.<fmt>)")
    p.add_argument("--segments", default=None,
                   help="Kaldi segments: enhance each utterance (segment) of the --wav_scp recordings")
    p.add_argument("--output_dir", default=None, help="where the enhanced files go (required)")
    p.add_argument("--out_scp", default=None, help="write `utt path` of every output written")
    p.add_argument("--vad_dir", default=None, help="write vad_prob.ark/.scp, segments, vad.rttm here")
    p.add_argument("--vad_threshold", type=_setting("vad_threshold"), default=None,
                   help="VAD decision threshold of segments/RTTM (default: the model's, else 0.5)")
    p.add_argument("--vad_floor", type=_setting("vad_floor"), default=None,
                   help="stage-2 gain floor, 0 (paper) ... 1 (VAD gate off); default: the model's")
    p.add_argument("--input_mix", type=_setting("input_mix"), default=None,
                   help="share of the unprocessed input kept in the output, 0 ... 1; default: the model's, else 0")
    p.add_argument("--snr_limit", type=_setting("snr_limit"), default=None,
                   help="per chunk, keep enough input that the estimated output SNR is not above this many "
                        "dB; none: no limit; default: the model's, else none")
    p.add_argument("--min_speech", type=float, default=0.25, help="drop speech segments shorter (s)")
    p.add_argument("--min_silence", type=float, default=0.1, help="bridge pauses shorter (s)")
    p.add_argument("--segment_seconds", type=_setting("segment_seconds"), default=None,
                   help="segment length (default: the model's, else 8)")
    p.add_argument("--overlap_seconds", type=_setting("overlap_seconds"), default=None,
                   help="overlap of segments (default: the model's, else 1; at most half the segment)")
    p.add_argument("--channels", choices=("each", "mix", "error"), default="each",
                   help="multi-channel input: enhance each channel / average to mono / refuse")
    p.add_argument("--output_format", choices=("wav", "flac"), default=None)
    p.add_argument("--output_subtype", choices=("PCM_16", "PCM_24", "FLOAT"), default="PCM_16")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--num_threads", type=_positive_int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="what runs the network (default torch)")
    p.add_argument("--onnx", default=None, help="ONNX file from csmvanet-export (--backend onnxruntime)")
    p.add_argument("--no_progress", action="store_true", help="no tqdm bar")
    p.add_argument("--report", default=None, metavar="DIR",
                   help="write a listening report DIR/index.html (offline; one page per input)")
    p.add_argument("--residual_dir", default=None, help="write input - output (what was removed) here")
    p.add_argument("--removed_share", type=_fraction, default=0.9,
                   help="report: flag speech where the output removed at least this share of the input's energy")
    p.add_argument("--stream", action="store_true",
                   help="live: enhance INPUT to OUTPUT ('-': standard input/output) as it comes (a causal model)")
    p.add_argument("--stream_format", choices=("auto", "wav", "raw"), default="auto",
                   help="--stream input: WAV or raw PCM (auto: WAV if it starts with RIFF)")
    p.add_argument("--raw_rate", type=_positive_int, default=16000, help="--stream raw input: sample rate (Hz)")
    p.add_argument("--raw_format", choices=("s16le", "s24le", "s32le", "f32le"), default="s16le",
                   help="--stream raw input: sample format")
    p.add_argument("--raw_channels", type=_positive_int, default=1, help="--stream raw input: channels")
    p.add_argument("--vad_events", default=None, metavar="FILE",
                   help="--stream: write speech_start/speech_end lines here as they happen (or 'stderr')")
    args = p.parse_args(argv)
    if args.stream:
        if len(args.inputs) != 2 or args.wav_scp or args.output_dir:
            p.error("--stream takes exactly INPUT and OUTPUT ('-' for standard input/output), "
                    "no --output_dir or --wav_scp")
        return _stream(args)
    if args.list_models:
        from csmvanet.experiment.model_files import list_bundled_models

        text, usable = list_bundled_models()
        print(text)
        return 0 if usable else 1
    if not args.output_dir:
        p.error("the following arguments are required: --output_dir")
    if not args.inputs and not args.wav_scp:
        p.error("give INPUT files/folders or --wav_scp")
    if args.segments and not args.wav_scp:
        p.error("--segments needs --wav_scp (the recordings it cuts)")
    if args.output_subtype == "FLOAT" and args.output_format == "flac":
        p.error("--output_format flac cannot hold --output_subtype FLOAT (FLAC is integer PCM): "
                "use PCM_16 or PCM_24, or --output_format wav")

    import torch

    from csmvanet.infer.batch import check_outputs, collect_inputs, enhance_batch
    from csmvanet.infer.enhancer import EnhanceError

    try:
        device = torch.device(args.device)
    except RuntimeError:
        p.error(f"--device {args.device!r}: not a device (use cpu, cuda or cuda:N)")
    if device.type not in ("cpu", "cuda"):
        p.error(f"--device {args.device!r}: only cpu, cuda and cuda:N are supported")
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("csmvanet-enhance: error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    from csmvanet.reports.enhance_page import check_report_dirs

    vad_dir = args.vad_dir or (f"{args.report}/vad" if args.report else None)
    try:   # before loading the model: a wrong output path fails at once, not after the batch
        check_outputs(args.output_dir, args.out_scp, vad_dir)
        problem = check_report_dirs(args.output_dir, args.report, args.residual_dir)
        if problem:
            raise EnhanceError(problem)
    except EnhanceError as e:
        print(f"csmvanet-enhance: error: {e}", file=sys.stderr)
        return 2
    enh = _load(args)
    if enh is None:
        return 2
    all_items = collect_inputs(args.inputs, args.wav_scp, args.output_format, segments=args.segments)
    items = [it for it in all_items if not it.skipped]
    print(f"csmvanet-enhance: model {enh.source} ({enh.sample_rate} Hz, vad_floor {enh.vad_floor:g}, "
          f"input_mix {enh.input_mix:g}, snr_limit "
          f"{'none' if enh.snr_limit is None else format(enh.snr_limit, 'g') + ' dB'}), "
          f"{len(items)} input(s), "
          + ("one causal stream, " if getattr(enh.model, "causal", False) else
             f"segments {enh.segment_seconds:g} s overlap {enh.overlap_seconds:g} s, ") + f"backend {enh.backend}, "
          f"device {args.device}, "
          f"{torch.get_num_threads()} thread(s)", file=sys.stderr)
    try:
        rep = enhance_batch(enh, all_items, args.output_dir, out_scp=args.out_scp, vad_dir=vad_dir,
                            channels=args.channels, subtype=args.output_subtype,
                            vad_threshold=enh.vad_threshold, min_speech=args.min_speech,
                            min_silence=args.min_silence, progress=not args.no_progress)
    except (EnhanceError, ValueError, OSError) as e:   # output dir / scp / VAD files not writable
        print(f"csmvanet-enhance: error: {e}", file=sys.stderr)
        return 2
    rtf = rep.seconds / rep.audio_seconds if rep.audio_seconds else float("nan")
    print(f"csmvanet-enhance: enhanced {len(rep.done)} of {len(items)} input(s), {rep.audio_seconds:.1f} s "
          f"of audio in {rep.seconds:.1f} s (real-time factor {rtf:.3f})", file=sys.stderr)
    if args.report or args.residual_dir:
        from csmvanet.reports.enhance_page import report_after_batch

        rep.failed += report_after_batch(enh, args, all_items, rep, vad_dir,
                                         say=lambda line: print(f"csmvanet-enhance: {line}", file=sys.stderr))
        if args.report:
            print(f"csmvanet-enhance: wrote {args.report}/index.html", file=sys.stderr)
    if rep.skipped:
        print(f"csmvanet-enhance: skipped {len(rep.skipped)} file(s) of the input folder(s) (listed above)",
              file=sys.stderr)
    if rep.failed:
        print(f"csmvanet-enhance: {len(rep.failed)} input(s) failed (listed above)", file=sys.stderr)
        return 1
    return 0


def _load(args):
    """The Enhancer of the command line, or None after a one-line error."""
    from csmvanet.experiment.inference_settings import SETTINGS
    from csmvanet.infer.enhancer import EnhanceError, Enhancer

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            given = {k: getattr(args, k) for k in SETTINGS}   # None: not given (the model's own)
            enh = Enhancer.from_pretrained(args.model, device=args.device, checkpoint=args.checkpoint,
                                           onnx_path=args.onnx, retain_memory=not args.stream, **given)
        for w in caught:
            print(f"csmvanet-enhance: warning: {w.message}", file=sys.stderr)
        return enh
    except (EnhanceError, ValueError, OSError) as e:
        print(f"csmvanet-enhance: error: {e}", file=sys.stderr)
        return None


def _stream(args) -> int:
    """--stream IN OUT: csmvanet.infer.pipe_stream between two files or pipes."""
    import torch

    from csmvanet.infer.pipe_stream import stream_paths

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    enh = _load(args)
    if enh is None:
        return 2
    return stream_paths(enh, *args.inputs, vad_events=args.vad_events, stream_format=args.stream_format,
                        raw_rate=args.raw_rate, raw_format=args.raw_format, raw_channels=args.raw_channels,
                        channels=args.channels, say=lambda line: print(f"csmvanet-enhance: {line}", file=sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
