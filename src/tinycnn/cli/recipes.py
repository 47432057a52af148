"""`tinycnn recipes`: the shipped recipes, one line each, or one recipe in full."""

HELP = "list the shipped recipes, or show one resolved"


def add_arguments(parser):
    parser.add_argument("name", nargs="?", help="show this recipe's resolved configuration as TOML")


def run(args):
    from tinycnn.config import to_toml
    from tinycnn.recipes import list_recipes, load_recipe

    if args.name:
        print(to_toml(load_recipe(args.name).to_dict()), end="")
        return 0
    print(f"{'recipe':<14} {'model':<22} {'epochs':>6} {'batch':>5}  {'schedule':<9} {'spec':<7} description")
    for name in list_recipes():
        c = load_recipe(name)
        print(f"{name:<14} {c.model:<22} {c.epochs:>6} {c.batch_size:>5}  {c.scheduler:<9} {c.spec:<7} {c.description}")
    return 0
