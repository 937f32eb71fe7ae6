"""csmvanet-export: write the network of a trained CSM-VANet as ONNX (for csmvanet-enhance --backend onnxruntime).

  csmvanet-export --model MODEL --out model.onnx [--checkpoint valid.loss.ave.pth] [--opset 17]

MODEL: a packed model (csmvanet-pack), an experiment dir or a weights file inside one.
The graph is the network only, input conv to output conv and the VAD head: feats [B, 3, T, F]
(compressed magnitude, real, imaginary) -> ri [B, 2, T, F] (+ vad_logits [B, T]); batch and time
are dynamic. STFT, level normalisation, the VAD gain and the inverse STFT stay in csmvanet, so use the
file together with its model:

  csmvanet-enhance --model MODEL --backend onnxruntime --onnx model.onnx INPUT... --output_dir D

(which checks that the file fits MODEL's weights). Needs `pip install 'csmvanet[onnx]'`.
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="csmvanet-export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="packed model, experiment dir or weights file in one")
    p.add_argument("--out", required=True, help="ONNX file to write (.onnx)")
    p.add_argument("--checkpoint", default=None, help="weights file name inside the experiment dir")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17; 14 to 20)")
    args = p.parse_args(argv)
    from csmvanet.bin import write_one_file
    from csmvanet.experiment.onnx_export import OPSET, check_opset, export_model

    try:
        check_opset(OPSET if args.opset is None else args.opset)
    except ValueError as e:
        print(f"csmvanet-export: error: --{e}", file=sys.stderr)
        return 2

    # the exporter's own warnings are silenced inside export_onnx; the rest are shown
    return write_one_file("csmvanet-export", args.out, lambda: export_model(
        args.model, args.out, checkpoint=args.checkpoint, opset=OPSET if args.opset is None else args.opset))


if __name__ == "__main__":
    sys.exit(main())
