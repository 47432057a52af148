"""`tinycnn models [PATTERN]`: the registered models with parameters, logits, structure and source.

    tinycnn models
    tinycnn models "era-s7*"
"""

HELP = "list the registered models: parameters, logits, BN / Dropout / GAP / FC, source"


def add_arguments(parser):
    parser.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern on model names, or a part of one (e.g. tiny)")


def run(args):
    from tinycnn.errors import TinycnnError
    from tinycnn.models import create_model, list_models, model_info
    from tinycnn.models.summary import summarize

    names = list_models(args.pattern)
    if not names:
        raise TinycnnError(f"no model matches {args.pattern!r}; run `tinycnn models` to list them all.")
    header = ("name", "params", "logits", "BN", "Drop", "GAP", "FC", "description")
    rows = []
    for name in names:
        info, s = model_info(name), summarize(create_model(name))
        flags = [("y" if f else "-") for f in (s.has_batchnorm, s.has_dropout, s.has_gap, s.has_linear)]
        rows.append((name, f"{s.total_params:,}", str(s.n_logits), *flags, info.description, info))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(7)]

    def fmt(cells):
        name, params, logits, *flags = cells[:7]
        out = [name.ljust(widths[0]), params.rjust(widths[1]), logits.rjust(widths[2])]
        out += [f.center(w) for f, w in zip(flags, widths[3:7])]
        return "  ".join(out + [cells[7]])

    print(fmt(header))
    for row in rows:
        info = row[-1]
        print(fmt(row))
        print(" " * (widths[0] + 2) + "from: " + info.origin + (f", {info.link}" if info.link else ""))
    return 0
