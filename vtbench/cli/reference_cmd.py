"""``vtbench reference-stats DATASET --out stats.npz``: export mu/sigma of a reference set's features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from vtbench.cli.options import settings_options
from vtbench.settings import Settings


@settings_options("reference-stats", Settings)
def reference_stats(
    dataset: str = typer.Argument(..., help="Reference set: folder, .npz with arr_0, or dataset name."),
    out: Path = typer.Option(..., "--out", "-o", help="The .npz to write (mu, sigma; torch-fidelity / clean-fid layout)."),
    extractor: str = typer.Option(
        "inception-v3-compat", "--extractor", help="Whose features: inception-v3-compat (FID), efficientnet-lite0 (offline), dinov2-..."
    ),
    settings: dict[str, Any] | None = None,
) -> None:
    """Write reference statistics (mu and sigma; Inception 2048-d by default, FID's), using the
    feature cache. The file names its extractor: a run reads it only for that extractor's metrics.

    The images are read as a generation run reads its reference (the same settings: a
    --protocol such as adm-gfid-256 gives its crop), and the file records how it was made.

    Example:

      vtbench reference-stats data/imagenet-val --resolution 256 --out imagenet256_stats.npz

      vtbench reference-stats data/imagenet-val --resolution 256 --extractor efficientnet-lite0 --out lite0_stats.npz
    """
    from vtbench.reference import write_reference_statistics

    provenance = write_reference_statistics(dataset, out, settings or {}, extractor)
    typer.echo(f"wrote {out} ({provenance['n_images']} images, feature cache {provenance['cache']})")
