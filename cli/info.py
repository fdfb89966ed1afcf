"""`sigrl info`: versions and which optional pieces are usable on this machine."""

from __future__ import annotations

import json

import typer

from sigrl.environment import describe_environment


def info(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Show versions, available backends, and why any optional piece is unavailable."""
    report = describe_environment()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"sigrl {report['sigrl']}  (python {report['python']}, {report['platform']})")
    typer.echo("components:")
    for name, item in report["components"].items():
        state = item["version"] if item["available"] else "not available"
        typer.echo(f"  {name:<14} {state}")
        if not item["available"]:
            typer.echo(f"  {'':<14} {item['reason']}")
    typer.echo("extras:")
    for name, item in report["extras"].items():
        state = item["version"] if item["available"] else "not installed"
        typer.echo(f"  {name:<14} {state:<14} [{item['extra']}] {item['for']}")
    typer.echo("backends:")
    for name, item in report["backends"].items():
        mark = "yes" if item["available"] else "no "
        typer.echo(f"  {name:<14} {mark}  {item['detail']}")
