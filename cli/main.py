"""Entry point of the `sigrl` console script.

Each command lives in its own module and only parses arguments before calling the library.
Exit codes: 0 done, 1 some images failed (`sigrl tag`) or a bench floor was missed, 2 a usage
error, 3 an internal error (a bug: the traceback says where), 130 interrupted. A usage error is one
line on stderr, whether it is a bad argument (cli.checks, click), a `SigrlError` from the library,
or an operating-system error on a path the user gave (a full disk, a folder that went away).
"""

from __future__ import annotations

import logging
import sys
import traceback

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

# Typer raises click's exception types, from click or from its own vendored copy depending on the
# version; BadParameter's base class is the UsageError of whichever it uses.
_UsageError = typer.BadParameter.__bases__[0]

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
    sys.exit(run(sys.argv[1:]))


def run(argv: list[str]) -> int:
    """Runs one command; returns its exit code (see the module docstring)."""
    try:
        code = app(args=argv, prog_name="sigrl", standalone_mode=False)
    except _UsageError as err:
        if not err.format_message():  # a bare `sigrl` or `sigrl data`: the help was the message
            return 2
        hint = f" (see {err.ctx.command_path} --help)" if err.ctx is not None else ""
        return _usage_error(err.format_message() + hint)
    except SigrlError as err:
        return _usage_error(str(err))
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        return _usage_error(f"{where}{err.strerror or err}")
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        return 130
    except Exception:
        traceback.print_exc()
        typer.echo("error: internal error (a bug in sigrl; the traceback above says where)", err=True)
        return 3
    return code if isinstance(code, int) else 0


def _usage_error(message: str) -> int:
    typer.echo("error: " + " ".join(message.split()), err=True)  # one line, whatever the message holds
    return 2


if __name__ == "__main__":
    main()
