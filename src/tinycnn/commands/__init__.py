"""One module per `tinycnn` subcommand: HELP, add_arguments(parser), run(args) -> int."""
