"""`tinycnn export RUN_DIR --format onnx|c`: the network as ONNX (checked on the test set), int8
ONNX, or C for a microcontroller."""

HELP = "export a run's network: ONNX (fp32, --int8), or int8 C for a microcontroller (--format c)"
DESCRIPTION = (
    "Export the network as evaluation runs it (BatchNorm folded, the weight average where the run "
    "kept one), taking pixels in [0, 1] (MNIST's bytes / 255) with the normalisation inside. "
    "--format onnx writes --out and checks it against torch on the 10,000 test images; --int8 "
    "also writes <out>.int8.onnx, quantised statically by onnxruntime (per-channel weights, "
    "activations calibrated on training images). --format c writes model.h and model.c into the "
    "--out directory: C99, int8, integer arithmetic only, no malloc, with the int8 ONNX model it "
    "was made from beside them."
)


def add_arguments(parser):
    parser.add_argument("target", help="a run directory (its last.pt) or a checkpoint")
    parser.add_argument("--format", choices=["onnx", "c"], default="onnx", help="what to write")
    parser.add_argument("--int8", action="store_true", help="with --format onnx: also the int8 model, <out>.int8.onnx")
    parser.add_argument("--out", required=True, help="the .onnx file (--format onnx) or the directory (--format c)")
    parser.add_argument("--model", default=None, metavar="FILE.py:NAME",
                        help="for a network of your own whose recorded file has changed or is gone: the file to rebuild it from")


def run(args):
    from pathlib import Path

    from tinycnn.deploy import export

    if args.format == "onnx":
        out = Path(args.out)
        if out.suffix != ".onnx":
            from tinycnn.errors import TinycnnError

            raise TinycnnError(f"--out {out}: an ONNX model's file ends in .onnx")
        export.to_onnx(args.target, out, int8=args.int8, model=args.model)
    else:
        export.to_c(args.target, Path(args.out), model=args.model)
    return 0
