"""`tinycnn predict RUN_DIR|model.onnx IMAGE...`: the digits in photos, scans or drawings."""

HELP = "read digits from PNG or JPEG images (photos, scans, drawings) with a run's network or an ONNX model"
DESCRIPTION = (
    "Each image becomes an MNIST input the way MNIST was made: grey, the ink made bright, cropped to "
    "the digit, scaled to fit 20x20 keeping its aspect, centred by its centre of mass in 28x28. "
    "Dark ink on light paper or light on dark, any size. Prints the digit and its probabilities."
)


def add_arguments(parser):
    parser.add_argument("target", help="a run directory (or checkpoint), or a .onnx model from tinycnn export")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    parser.add_argument("--json", action="store_true", help='one JSON object per line: {"file", "digit", "probabilities"}')
    parser.add_argument("--show", default=None, metavar="DIR", help="write each input beside the 28x28 image the network saw")
    parser.add_argument("--model", default=None, metavar="FILE.py:NAME",
                        help="for a network of your own whose recorded file has changed or is gone: the file to rebuild it from")


def run(args):
    import json
    from pathlib import Path

    from tinycnn.deploy.predict import Reader, show

    predictions = Reader(args.target, args.model).read(args.images)
    for p in predictions:
        if args.json:
            print(json.dumps({"file": p.file, "digit": p.digit, "probabilities": p.probabilities}))
        else:
            top = sorted(range(len(p.probabilities)), key=lambda i: -p.probabilities[i])[:3]
            others = ", ".join(f"{i}: {p.probabilities[i]:.3f}" for i in top[1:])
            print(f"{p.file}: {p.digit} (probability {p.probabilities[p.digit]:.3f}; then {others})")
        if args.show:
            path = show(p, p.file, Path(args.show))
            if not args.json:
                print(f"  the network saw: {path}")
    return 0
