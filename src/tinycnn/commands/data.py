"""`tinycnn data fetch | info`: get verified MNIST (or Fashion-MNIST) into the cache and describe it."""

HELP = "fetch and verify MNIST / Fashion-MNIST, or describe the cached copy"


def add_arguments(parser):
    parser.add_argument("action", choices=["fetch", "info"])


def run(args):
    raise NotImplementedError
