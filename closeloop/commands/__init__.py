"""One module per ``closeloop`` subcommand; each defines ``register(subparsers)``."""
