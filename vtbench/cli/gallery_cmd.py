"""``vtbench gallery RECORD --out FILE``: the images a run reconstructs worst, zoomed where it fails."""

from __future__ import annotations

from pathlib import Path

import typer


def gallery(
    record: Path = typer.Argument(..., help="One run record (.json), its per-image CSV beside it."),
    out: Path = typer.Option(..., "--out", "-o", help="The figure to write: .png, .svg or .pdf."),
    metric: str = typer.Option("psnr", "--metric", "-m", help="The per-image metric that ranks the images."),
    k: int = typer.Option(4, "--k", "-k", help="How many images."),
    versus: Path | None = typer.Option(None, "--versus", help="A second run record: show the images where the two runs differ most."),
    crop: int | None = typer.Option(None, "--crop", help="Side of the zoomed window in pixels (default: a quarter of the image)."),
    device: str = typer.Option("cpu", "--device", help="Where a tokenizer runs when reconstructions are recomputed."),
) -> None:
    """Draw the K worst images of a run by a metric (or where two runs differ most): original,
    reconstruction(s) and zoomed crops of the window with the largest error. Reconstructions
    saved by --save-reconstructions are read; otherwise they are recomputed.

    Examples:

      vtbench gallery results/quickstart/jpeg-q25__samples.json -m psnr -k 4 --out worst.png

      vtbench gallery results/quickstart/jpeg-q25__samples.json --versus results/quickstart/webp-q25__samples.json -m ssim --out diff.png
    """
    from vtbench import plots
    from vtbench.gallery import build_gallery, gallery_figure

    entries = build_gallery(record, metric, k, versus, crop, device)
    typer.echo(f"wrote {plots.save(gallery_figure(entries), out)}")
