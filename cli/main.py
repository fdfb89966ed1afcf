"""Entry point of the `sigrl` console script.

Each command lives in its own module and only parses arguments before calling the library. A
`SigrlError` raised anywhere below becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import logging
import sys

import typer

import sigrl
from sigrl.errors import SigrlError

from . import data, info, pretrain
from . import train as train_cmd
from . import eval as eval_cmd
from . import export as export_cmd
from . import bench as bench_cmd
from . import tag as tag_cmd
from . import calibrate as calibrate_cmd
from . import merge as merge_cmd

app = typer.Typer(
    name="sigrl",
    help="Open-vocabulary multi-label image tagging with SigRL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("info")(info.info)
app.add_typer(data.app, name="data")
app.command("pretrain")(pretrain.pretrain)
app.command("train")(train_cmd.train)
app.command("eval")(eval_cmd.eval_command)
app.command("export")(export_cmd.export)
app.command("bench")(bench_cmd.bench)
app.command("tag")(tag_cmd.tag)
app.command("calibrate")(calibrate_cmd.calibrate)
app.command("merge")(merge_cmd.merge)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sigrl {sigrl.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr."),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    try:
        app()
    except SigrlError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
