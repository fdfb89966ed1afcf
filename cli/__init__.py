"""The `sigrl` command line: one thin Typer module per command over the library."""
