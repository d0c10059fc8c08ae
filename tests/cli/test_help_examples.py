"""Every example a command's --help shows parses with that command: no help text can
advertise an option or argument that does not exist."""

from __future__ import annotations

import re
import shlex

import pytest
import typer

from dckd_cli.cli import ablate, distill, encoder, evaluate, export, restore
from dckd_cli.cli.app import app

HELP_EXAMPLES = [distill.EXAMPLE, evaluate.EXAMPLE, export.EXAMPLE, ablate.EXAMPLE, restore.EXAMPLE, encoder.EXAMPLE]


def example_commands() -> list[str]:
    commands = []
    for text in HELP_EXAMPLES:
        body = re.sub(r"^Examples?:\s*", "", text)
        for part in body.split("  |  "):
            part = re.sub(r"\s+\([^)]*\)\s*$", "", part.strip())  # a trailing "(what it does)"
            commands.append(part.strip())
    return commands


def _parse(args: list[str]) -> None:
    command = typer.main.get_command(app)
    ctx = command.make_context("dckd", list(args))
    while hasattr(command, "resolve_command"):  # a group: descend to the subcommand
        protected = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
        name, command, rest = command.resolve_command(ctx, [*protected, *ctx.args])
        ctx = command.make_context(name, rest, parent=ctx)


@pytest.mark.parametrize("line", example_commands())
def test_help_example_parses(line):
    args = shlex.split(line)
    assert args[0] == "dckd"
    _parse(args[1:])  # raises a usage error for an unknown option or a missing argument


def test_a_wrong_example_would_fail():
    with pytest.raises(Exception, match="No such option"):
        _parse(["export", "run", "--output", "x", "--no-such-flag"])


def test_help_shows_defaults_and_the_environment_variable():
    from typer.testing import CliRunner

    text = " ".join(CliRunner().invoke(app, ["distill", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "(default: dckd, or the preset's)" in text and "(default: $DCKD_DATA)" in text
    assert not re.search(r"[a-z] \. ", text)  # nothing swallowed as markup before a full stop
