"""One module per `finetune` subcommand: HELP, add_arguments(parser), run(args) -> int."""
