"""``vtbench list KIND``: what is registered, built-in and from plugins."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer


class Kind(str, Enum):
    tokenizers = "tokenizers"
    metrics = "metrics"
    datasets = "datasets"
    generators = "generators"
    ocr = "ocr"
    faces = "faces"
    extractors = "extractors"
    protocols = "protocols"


def list_registered(
    kind: Kind = typer.Argument(..., help="Which registry to list."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    family: str | None = typer.Option(
        None, "--family", help="Only tokenizers of this family or quantizer (codec, pixel, discrete, continuous, vq, kl, lfq ...)."
    ),
    here: bool = typer.Option(False, "--here", help="Only tokenizers that run on this machine now, without a download."),
) -> None:
    """List registered tokenizers, metrics, datasets, generators, OCR engines, face engines, feature extractors, or the paper protocols.

    Examples:

      vtbench list tokenizers --family vq

      vtbench list tokenizers --here

      vtbench list metrics --json
    """
    import vtbench

    if here and kind != Kind.tokenizers:
        from vtbench.errors import VtbenchError

        raise VtbenchError(f"--here lists the tokenizers that run here without a download; it does not apply to {kind.value}")
    if kind == Kind.protocols:  # presets as data, not a plugin registry
        from vtbench.protocols import PROTOCOLS

        rows = [{"name": p.name, "task": p.task, "description": p.description, "source": p.source, "settings": p.settings}
                for p in PROTOCOLS.values()]  # fmt: skip
        broken = []
    else:
        registry = vtbench.registries()[kind.value]
        entries = [e for e in registry.entries() if family is None or family in (e.tags.get("family"), e.tags.get("quantizer"))]
        rows = [
            {
                "name": e.name,
                "description": e.summary(),
                "source": e.source,
                "options": e.defaults,
                **({"family": e.tags["family"]} if "family" in e.tags else {}),
                **(_declared_metric(registry, e.name) if kind == Kind.metrics else {}),
                **({"weights": weights_here(_with_class_defaults(e), e.tags.get("family"))} if kind == Kind.tokenizers else {}),
            }
            for e in entries
        ]
        if here:
            rows = [row for row in rows if row.get("weights") in ("none needed", "here")]
        broken = [{"name": name, "error": error} for name, error in registry.plugin_errors.items()]
    if as_json:
        typer.echo(json.dumps({"kind": kind.value, "entries": rows, "plugin_errors": broken}, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not rows and (family or here):
        console.print(f"No {kind.value} match" + (f" --family {escape(family)}" if family else "") + (" --here" if here else "") + ".")
    elif not rows:
        console.print(f"No {kind.value} registered yet.")
    else:
        table = Table(title=f"vtbench {kind.value}")
        columns = {
            Kind.tokenizers: ("name", "family", "weights", "description", "source"),
            Kind.protocols: ("name", "task", "description"),
            Kind.metrics: ("name", "better", "unit", "kind", "description", "source"),
        }.get(kind, ("name", "description", "source"))
        for column in columns:
            table.add_column(column)
        arrows = {True: "↑", False: "↓", None: ""}
        for row in rows:
            row = {**row, "better": arrows.get(row.get("higher_is_better"), "")}
            table.add_row(*(escape(str(row.get(column, ""))) for column in columns))
        console.print(table)
    for item in broken:
        console.print(f"[red]plugin {escape(repr(item['name']))} failed to load:[/red] {escape(item['error'])}")


def _declared_metric(registry: object, name: str) -> dict[str, object]:
    """A metric's direction, unit, aggregation and kind, as its class declares them."""
    from vtbench.errors import VtbenchError

    try:
        return registry.create(name).declared()  # type: ignore[attr-defined]
    except VtbenchError as exc:  # a plugin whose metric cannot be built here: listed, with why
        return {"error": str(exc)}


def _with_class_defaults(entry: object) -> dict[str, object]:
    """A preset's options over its class's own defaults (where a family names its checkpoint)."""
    from vtbench.registry import option_defaults

    try:
        defaults = option_defaults(entry.load()) or {}  # type: ignore[attr-defined]
    except Exception:  # a family whose code cannot be imported here: its preset options alone
        defaults = {}
    return {**defaults, **entry.defaults}  # type: ignore[attr-defined]


def weights_here(options: dict[str, object], family: object = None) -> str:
    """Whether a tokenizer preset runs here without a download: ``none needed`` (codecs, pixel
    baselines), ``here`` (its checkpoint in the weights store or its hub repository's weights in
    the Hugging Face cache), ``download`` (``vtbench weights fetch`` / the hub, once) or ``yours``
    (a generic loader: ``weights=`` your own folder)."""
    from vtbench import weights
    from vtbench.errors import VtbenchError

    if isinstance(options.get("checkpoint"), str):
        try:
            weights.locate(str(options["checkpoint"]), fetch=False)
            return "here"
        except VtbenchError:
            return "download"
    if isinstance(options.get("repo"), str):
        from huggingface_hub.constants import HF_HUB_CACHE

        snapshots = Path(HF_HUB_CACHE) / f"models--{str(options['repo']).replace('/', '--')}" / "snapshots"
        found = snapshots.is_dir() and any(p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt") for p in snapshots.rglob("*"))
        return "here" if found else "download"
    return "none needed" if family in ("codec", "pixel") else "yours"
