"""The `boomerang` command line (typer): one module per command group."""
