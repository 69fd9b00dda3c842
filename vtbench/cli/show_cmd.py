"""``vtbench show NAME``: one tokenizer preset (or any registered name), as data."""

from __future__ import annotations

import json

import typer


def show(
    name: str = typer.Argument(..., help="A tokenizer preset (or metric, dataset, ... name)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Print a preset: what builds it, its default options, and its metadata (source, license, paper ...).

    Example:

      vtbench show llamagen-vq-ds16-c2i
    """
    import vtbench
    from vtbench.errors import UnknownNameError
    from vtbench.protocols import PROTOCOLS

    if name in PROTOCOLS:
        shown_protocol = {"kind": "protocol", **PROTOCOLS[name].to_dict()}
        if as_json:
            typer.echo(json.dumps(shown_protocol, indent=2))
        else:
            for key, value in shown_protocol.items():
                typer.echo(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
        return
    registries = vtbench.registries()
    found = [(kind, registry.get(name)) for kind, registry in registries.items() if name in registry]
    if not found:
        registries["tokenizers"].get(name)  # raises with close matches
        raise UnknownNameError("tokenizers", name, [], [])
    kind, entry = found[0]
    target = entry.target if isinstance(entry.target, str) else f"{entry.target.__module__}:{entry.target.__qualname__}"
    from vtbench.registry import option_defaults

    try:
        accepts = option_defaults(entry.load())
    except Exception:  # a family whose code cannot be imported here still shows its metadata
        accepts = None
    shown = {"name": entry.name, "kind": kind, "description": entry.summary(), "target": target, "registered_by": entry.source,
             "options": entry.defaults, **({"accepts": accepts} if accepts is not None else {}), **entry.tags}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"{kind[:-1] if kind.endswith('s') else kind} {name}"), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in shown.items():
        if key == "options" and not value:
            table.add_row("options", "none set by this name (the defaults below apply)" if accepts else "none")
        elif key == "accepts":
            spelled = ", ".join(f"{option}={json.dumps(default, default=str)}" for option, default in value.items())
            table.add_row("accepts (defaults)", escape(spelled or "nothing"))
        elif key != "name":
            table.add_row(escape(key), escape(json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)))
    Console().print(table)
