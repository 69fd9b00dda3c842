"""``vtbench reference-stats DATASET --out stats.npz``: export Inception mu/sigma of a reference set."""

from __future__ import annotations

from pathlib import Path

import typer


def reference_stats(
    dataset: str = typer.Argument(..., help="Reference set: folder, .npz with arr_0, or dataset name."),
    out: Path = typer.Option(..., "--out", "-o", help="The .npz to write (mu, sigma; torch-fidelity / clean-fid layout)."),
    resolution: int | None = typer.Option(None, "--resolution", help="Resize/crop the reference images to this side first."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda or cuda:N."),
) -> None:
    """Write FID reference statistics (Inception 2048-d mu and sigma), using the feature cache.

    Example:

      vtbench reference-stats data/imagenet-val --resolution 256 --out imagenet256_stats.npz
    """
    from vtbench import weights
    from vtbench.engine import create_dataset, resolve_device
    from vtbench.engine.features import dataset_features
    from vtbench.features import EXTRACTORS
    from vtbench.images import Preprocessing
    from vtbench.reference import export_statistics

    located = {"inception-v3-compat": weights.locate("inception-v3-compat")}
    extractor = EXTRACTORS.create("inception-v3-compat", located=located, device=resolve_device(device))
    preprocessing = Preprocessing(resolution, "center-crop" if resolution else "none")
    features, provenance = dataset_features(create_dataset(dataset, {}), preprocessing, extractor)
    export_statistics(features["2048"], out)
    typer.echo(f"wrote {out} ({provenance['n_images']} images, feature cache {provenance['cache']})")
