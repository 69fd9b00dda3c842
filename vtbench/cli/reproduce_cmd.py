"""``vtbench reproduce NAME``: a preset's paper protocol, measured against its reported numbers."""

from __future__ import annotations

from pathlib import Path

import typer


def reproduce(
    name: str = typer.Argument(..., help="A tokenizer or generator preset with reported numbers (`vtbench show NAME`)."),
    data: str | None = typer.Option(
        None, "--data", help="ImageNet-1k val folder (tokenizers), or the ADM reference batch .npz (generators)."
    ),
    protocol: str | None = typer.Option(None, "--protocol", "-p", help="Another protocol than the preset's (`vtbench list protocols`)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="A quick smoke run on the first N images, judged with wide tolerances."),
    out: Path = typer.Option(Path("results/reproduce"), "--out", "-o", help="Where the record goes."),
    device: str | None = typer.Option(None, "--device", help="auto (default), cpu, cuda, cuda:N."),
    batch_size: int | None = typer.Option(None, "--batch-size", "-b", min=1, help="Images per batch (the numbers do not depend on it)."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="DataLoader worker processes."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Reproduce a preset's published numbers: run its paper protocol with the release's own
    evaluation transform, then print measured vs reported with the difference and a verdict
    (written into the record too). Missing weights or data: the commands that fetch them, exit 2.
    Exit 1 when a judged number is outside its tolerance.

    Examples:

      vtbench reproduce llamagen-vq-ds16-c2i --data /data/imagenet/val

      vtbench reproduce titok-l32 --data /data/imagenet/val --limit 500

      vtbench reproduce llamagen-c2i-b-256 --data VIRTUAL_imagenet256_labeled.npz
    """
    from vtbench.progress import for_this_output
    from vtbench.reproduce import reproduce as run_reproduction

    overrides = {
        key: value for key, value in (("device", device), ("batch_size", batch_size), ("num_workers", workers)) if value is not None
    }
    record, block = run_reproduction(name, data, out, protocol, limit, overrides, progress=None if as_json else for_this_output())
    if as_json:
        from vtbench.io import to_json

        typer.echo(to_json({**block, "record": str(record.path)}), nl=False)
    else:
        print_reproduction(block, record.path)
    if any(row.get("within") is False for row in block["rows"]):
        raise typer.Exit(1)


def print_reproduction(block: dict, path: Path | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from vtbench.leaderboard import format_value

    images = block.get("images") or block["limit"]
    kind = (
        "full protocol"
        if not block["smoke"]
        else f"smoke run, {images:,} images" + ("" if block["limit"] else " of 50,000: judged as a smoke run")
    )
    table = Table(title=escape(f"{block['preset']}: reproduction under {block['protocol']} ({kind})"))
    for column in ("number", "metric", "reported", "measured", "difference", "tolerance", "verdict"):
        table.add_column(column, justify="right" if column in ("reported", "measured", "difference") else "left")
    for row in block["rows"]:
        difference = "" if row["difference"] is None else f"{row['difference']:+.4g}"
        cells = [row["reported_as"], row["metric"] or "", format_value(row["reported"]) if isinstance(row["reported"], (int, float))
                 else str(row["reported"]), "" if row["measured"] is None else format_value(row["measured"]), difference,
                 row["tolerance"] or "", row["verdict"]]  # fmt: skip
        table.add_row(*(escape(str(cell)) for cell in cells))
    console = Console()
    console.print(table)
    evaluation = block["evaluation"]
    console.print(
        escape(
            f"evaluation transform: {evaluation.get('transform')}"
            + (f" (read in {evaluation['read_in']})" if evaluation.get("read_in") else "")
        )
    )
    if block.get("setup") or block.get("source"):
        said = "; ".join(part for part in (block.get("setup"), block.get("source") and f"source: {block['source']}") if part)
        console.print(escape(f"reported: {said}"))
    if path is not None:
        console.print(escape(f"record: {path}"))
