"""`tinycnn summary NAME`: the layer table of one model, from the zoo or your own file.

    tinycnn summary era-s7-6750
    tinycnn summary era-s6-19712 --dropout 0.05
    tinycnn summary my_net.py:Net
"""

HELP = "layer table of a model: output shapes, parameters, receptive field, jump, multiply-adds"


def add_arguments(parser):
    parser.add_argument("name", help="a zoo name (`tinycnn models`), or path/to/file.py:Name or package.module:Name")
    parser.add_argument(
        "--dropout", type=float, default=None, help="dropout rate override (default: the model's own)"
    )
    parser.add_argument("--args", default=None, metavar="JSON",
                        help='keyword arguments for the model\'s factory, e.g. family\'s \'{"widths": [8, 12, 10, 10], "pool_after": 2}\'')


def run(args):
    from tinycnn.cli.args import keyword_arguments
    from tinycnn.models import create_model, model_info, source
    from tinycnn.models.summary import summarize

    model_args = keyword_arguments(args.args, "--args")
    if source.is_spec(args.name):
        model = source.build(source.parse_spec(args.name), args.dropout, model_args)
        print(summarize(model).render(title=args.name))
        return 0
    info = model_info(args.name)
    model = create_model(args.name, dropout=args.dropout, **model_args)
    print(summarize(model).render(title=args.name))
    print(f"origin            {info.origin}" + (f", {info.link}" if info.link else ""))
    if info.n_logits != 10:
        print(
            f"note              {info.n_logits} outputs, as the source ran it: cross-entropy "
            f"and argmax over all {info.n_logits}, labels 0-9 use the first ten"
        )
    return 0
