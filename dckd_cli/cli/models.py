"""`dckd models`: the networks a teacher or student can be, and a family's options."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from dckd_cli.cli.errors import user_errors

console = Console()

EXAMPLE = (
    "Examples:  dckd models   |  dckd models SPAN   |  "
    "dckd distill --teacher swinir --student SPAN --set student.options.feature_channels=32"
)


@user_errors
def models_command(
    family: Annotated[
        Optional[str], typer.Argument(help="A family (e.g. SPAN, rcan): its constructor options and defaults.")
    ] = None,
) -> None:
    """List the architectures (the table's named sizes and every spandrel family), or one family's options."""
    import warnings

    from dckd_cli.catalog.architectures import ARCHITECTURES, MODEL_ARCHS
    from dckd_cli.models.families import FILLED, constructor_options, family_id, family_names, network_class
    from dckd_cli.models.zoo import NETWORK_CLASSES

    warnings.simplefilter("ignore")
    if family is None:
        table = Table(title="Architectures with named sizes (--size)")
        for column in ("arch", "tasks", "sizes", "parameters"):
            table.add_column(column)
        for name in MODEL_ARCHS:
            entry = ARCHITECTURES[name]
            params = ", ".join(f"{size} {count}" for size, count in entry.params.items())
            table.add_row(name, ", ".join(entry.tasks), ", ".join(entry.sizes), params)
        console.print(table)
        names = [n for n in family_names() if n.lower() not in ARCHITECTURES]
        console.print(
            f"Any spandrel family, with its constructor's defaults and student.options / teacher.options: "
            f"{', '.join(names)}. A network of your own: package.module:function (README, 'Your own student'). "
            "`dckd models FAMILY` lists a family's options.",
            highlight=False,
        )
        return
    entry = ARCHITECTURES.get(family.lower())
    cls = NETWORK_CLASSES.get(family.lower()) or network_class(entry.spandrel if entry else family, "FAMILY")
    name = family.lower() if entry else (family_id(family) or family)
    table = Table(title=f"{name}: constructor options (student.options / teacher.options)")
    for column in ("option", "default", *(("sizes",) if entry else ())):
        table.add_column(column)
    for option in constructor_options(cls).values():
        if option.name in FILLED:
            continue
        default = "(required)" if option.required else repr(option.default)
        sized = (
            [f"{size} {hp[option.name]!r}" for size, hp in entry.sizes.items() if option.name in hp] if entry else []
        )
        table.add_row(option.name, default[:60], *((", ".join(sized),) if entry else ()))
    console.print(table)
    console.print(
        "Scale and RGB channels are set by dckd from the run. "
        + (f"Sizes: {', '.join(entry.sizes)} (--size); options override a size's values." if entry else ""),
        highlight=False,
    )
