"""`python -m bot` is the same as the `boomerang` command."""

from bot.cli.app import main

main()
