"""Worst-case galleries: the images a run reconstructs worst on one metric (or where two runs
differ most), each original beside its reconstruction(s), with a zoomed crop of the window
where the error is largest.

Originals are reloaded from the record's dataset through its preprocessing (and checked
against the content hashes in the per-image rows); reconstructions are read from
``OUT/RUN.recon/`` when the run saved them (``--save-reconstructions``), else recomputed with
the record's tokenizer and options, through the same aspect policy and 8-bit rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vtbench.errors import VtbenchError
from vtbench.schema import RunRecord


@dataclass
class GalleryEntry:
    """One image of a gallery: (H, W, 3) uint8 arrays and the crop window (top, left, side)."""

    image_id: str
    values: list[float]  # the metric on each reconstruction
    original: np.ndarray
    reconstructions: list[np.ndarray]
    labels: list[str]  # one per reconstruction (the run names)
    crop: tuple[int, int, int]
    metric: str = ""
    notes: list[str] = field(default_factory=list)

    def cropped(self, image: np.ndarray) -> np.ndarray:
        top, left, side = self.crop
        return image[top : top + side, left : left + side]


@dataclass
class LoadedRun:
    """A record and its per-image rows that were scored (a pandas frame)."""

    record: RunRecord
    rows: Any

    @property
    def name(self) -> str:
        return self.record.run_name

    @property
    def folder(self) -> Path:
        return self.record.folder


def load_run(path: str | Path) -> LoadedRun:
    """A record file (or a folder holding exactly one record) and its per-image CSV."""
    from vtbench.analysis import images_frame
    from vtbench.schema import find_records

    path = Path(path)
    records = find_records(path)
    if len(records) != 1:
        names = ", ".join(r.run_name for r in records[:5])
        raise VtbenchError(f"{path}: a gallery is made from one run record; found {len(records)}" + (f" ({names})" if names else ""))
    record = records[0]
    if not record.images_path.is_file():
        raise VtbenchError(
            f"{record.images_path}: the per-image rows of {record.run_name} are missing (vtbench run writes them beside the record)"
        )
    if record.task != "reconstruction":
        raise VtbenchError(f"{record.run_name} is a generation run: its samples have no originals to compare with")
    rows = images_frame(record)
    return LoadedRun(record, rows[rows["status"] == "ok"])


def select(run: LoadedRun, metric: str, k: int, versus: LoadedRun | None = None) -> list[tuple[str, int, list[float]]]:
    """The ``k`` worst images of ``run`` by ``metric`` (its direction from the record), or with
    ``versus`` the ``k`` images where the two runs' values differ most: (id, dataset index, values)."""
    entry = run.record.metrics.get(metric)
    if entry is not None and entry.status != "ok":  # recorded, but not computed (its weights were missing, ...)
        raise VtbenchError(f"{run.name}: {metric} was not computed ({entry.status}: {entry.reason or 'no reason recorded'})")
    if entry is None or metric not in run.rows.columns or run.rows[metric].isna().all():
        have = [m for m, e in run.record.metrics.items() if e.aggregation == "mean" and e.status == "ok"]
        raise VtbenchError(f"{run.name} has no per-image {metric!r} values (per-image metrics: {', '.join(have)})")
    rows = run.rows.dropna(subset=[metric])
    if versus is None:
        ordered = rows.sort_values(metric, ascending=entry.higher_is_better is not False, kind="stable")
        return [(str(r["id"]), int(r["index"]), [float(r[metric])]) for _, r in ordered.head(k).iterrows()]
    other = versus.rows.dropna(subset=[metric]) if metric in versus.rows.columns else None
    if other is None or other.empty:
        raise VtbenchError(f"{versus.name} has no per-image {metric!r} values")
    merged = rows[["id", "index", metric]].merge(other[["id", metric]], on="id", suffixes=("", "_versus"))
    if merged.empty:
        raise VtbenchError(f"{run.name} and {versus.name} share no scored image")
    merged["gap"] = (merged[metric] - merged[f"{metric}_versus"]).abs()
    merged = merged.sort_values("gap", ascending=False, kind="stable").head(k)
    return [(str(r["id"]), int(r["index"]), [float(r[metric]), float(r[f"{metric}_versus"])]) for _, r in merged.iterrows()]


def build_gallery(path: str | Path, metric: str = "psnr", k: int = 4, versus: str | Path | None = None,
                  crop: int | None = None, device: str = "cpu") -> list[GalleryEntry]:  # fmt: skip
    """The gallery of the run recorded at ``path`` (see the module docstring); ``crop`` is the
    zoom window's side in pixels (default a quarter of the image's shorter side, at least 16)."""
    if k < 1:
        raise VtbenchError(f"a gallery needs k >= 1 images, got {k}")
    if crop is not None and crop < 1:
        raise VtbenchError(f"the zoom window needs a side of at least 1 pixel, got --crop {crop}")
    runs = [load_run(path)] + ([load_run(versus)] if versus is not None else [])
    if versus is not None and runs[0].record.dataset.manifest_sha256 != runs[1].record.dataset.manifest_sha256:
        raise VtbenchError(f"{runs[0].name} and {runs[1].name} were made on different data (dataset manifests differ)")
    chosen = select(runs[0], metric, k, runs[1] if versus is not None else None)
    sources = [_Reconstructions(run, device) for run in runs]
    entries = []
    for image_id, index, values in chosen:
        original = sources[0].original(image_id, index)
        reconstructions = [source.reconstruction(image_id, index, original) for source in sources]
        original, reconstructions = _tiled([original, *reconstructions], sources[0].frames)
        error = [np.square(r.astype(np.float64) - original).sum(axis=2) for r in reconstructions]
        where = error[0] if len(error) == 1 else np.abs(error[0] - error[1])
        entries.append(GalleryEntry(image_id, values, original, reconstructions, [run.name for run in runs],
                                    largest_window(where, crop), metric))  # fmt: skip
    return entries


def build_gallery_across(paths: list[str | Path], metric: str = "psnr", k: int = 2, crop: int | None = None,
                         device: str = "cpu") -> list[GalleryEntry]:  # fmt: skip
    """The ``k`` images that are worst by ``metric`` across the runs recorded at ``paths`` (one
    dataset; their mean over the runs, by the metric's direction; lossless runs left out), each
    image once: its original beside every run's reconstruction, the zoom window where the run
    that did worst on it errs most."""
    import pandas as pd

    from vtbench.analysis import hardest_images, is_lossless

    runs = [run for run in (load_run(path) for path in paths) if not is_lossless(run.record)]
    if not runs:
        raise VtbenchError("no lossy run to show")
    if len({run.record.dataset.manifest_sha256 for run in runs}) > 1:
        raise VtbenchError(f"{', '.join(run.name for run in runs)} were made on different data (dataset manifests differ)")
    for run in runs:
        select(run, metric, 1)  # the metric per image in every run, or said by name
    rows = pd.concat([run.rows for run in runs], ignore_index=True)
    ranked = hardest_images([run.record for run in runs], rows, metric)
    chosen = list(ranked.loc[ranked["runs"] == len(runs), "id"].head(k))  # images every run scored
    values = {(str(r["id"]), r["run"]): float(r[metric]) for _, r in rows.dropna(subset=[metric]).iterrows()}
    positions = {str(r["id"]): int(r["index"]) for _, r in rows.iterrows()}
    higher = runs[0].record.metrics[metric].higher_is_better is not False
    sources = [_Reconstructions(run, device) for run in runs]
    entries = []
    for image_id in chosen:
        original = sources[0].original(image_id, positions[image_id])
        reconstructions = [source.reconstruction(image_id, positions[image_id], original) for source in sources]
        original, reconstructions = _tiled([original, *reconstructions], sources[0].frames)
        scores = [values[(image_id, run.name)] for run in runs]
        worst = int(np.argmin(scores) if higher else np.argmax(scores))
        error = np.square(reconstructions[worst].astype(np.float64) - original).sum(axis=2)
        entries.append(GalleryEntry(image_id, scores, original, reconstructions, [run.name for run in runs],
                                    largest_window(error, crop), metric))  # fmt: skip
    return entries


def _tiled(strips: list[np.ndarray], frames: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Film strips (H, T*W, 3) of a clip's ``frames`` frames laid out as a near-square grid of
    frames, white where the grid has no frame; images (``frames`` 0) are returned as they are."""
    if frames <= 1:
        return strips[0], strips[1:]
    columns = int(np.ceil(np.sqrt(frames)))
    rows = -(-frames // columns)
    grids = []
    for strip in strips:
        height, width = strip.shape[0], strip.shape[1] // frames
        grid = np.full((rows * height, columns * width, 3), 255, dtype=strip.dtype)
        for t in range(frames):
            row, column = divmod(t, columns)
            grid[row * height : (row + 1) * height, column * width : (column + 1) * width] = strip[:, t * width : (t + 1) * width]
        grids.append(grid)
    return grids[0], grids[1:]


def largest_window(error: np.ndarray, side: int | None = None) -> tuple[int, int, int]:
    """(top, left, side) of the ``side`` x ``side`` window with the largest summed ``error``
    (H, W); ties go to the first in raster order."""
    height, width = error.shape
    side = min(height, width, side or max(16, min(height, width) // 4))
    sums = np.pad(error, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    windows = sums[side:, side:] - sums[:-side, side:] - sums[side:, :-side] + sums[:-side, :-side]
    top, left = np.unravel_index(int(np.argmax(windows)), windows.shape)
    return int(top), int(left), int(side)


class _Reconstructions:
    """Originals and reconstructions of one recorded run: the originals through the run's
    source (its dataset and preprocessing), the reconstructions saved or recomputed through
    the run's transform (the tokenizer round trip, rounded to 8-bit levels)."""

    def __init__(self, run: LoadedRun, device: str) -> None:
        self.run, self.device = run, device
        self._round_trip: Any = None
        self._dataset: Any = None
        self._preprocessing: Any = None
        self.frames = 0  # a clip dataset's frames per clip, once an original was loaded

    def _set_up(self) -> None:
        if self._dataset is not None:
            return
        from vtbench.engine.components import create_dataset
        from vtbench.images import Preprocessing

        name, options = self.run.record.component("dataset")
        self._dataset = create_dataset(name, options)
        stored = self.run.record.protocol.preprocessing
        self._preprocessing = Preprocessing(**{k: v for k, v in stored.items() if k in Preprocessing.__dataclass_fields__})

    def original(self, image_id: str, index: int) -> np.ndarray:
        from vtbench.engine.loading import load_one

        self._set_up()
        if index >= len(self._dataset) or self._dataset.ids[index] != image_id:
            raise VtbenchError(f"{self.run.name}: image {image_id} is no longer at position {index} of its dataset (was it changed?)")
        loaded = load_one(self._dataset, self._preprocessing, index)
        if loaded.item.error is not None:
            raise VtbenchError(f"{self.run.name}: cannot reload {image_id}: {loaded.item.error}")
        expected = self.run.rows.loc[self.run.rows["id"] == image_id, "content_sha256"]
        if len(expected) and str(expected.iloc[0]) and loaded.item.sha256 != str(expected.iloc[0]):
            raise VtbenchError(f"{self.run.name}: {image_id} has changed since the run (its content hash differs)")
        pixels = loaded.pixels
        if pixels.dim() == 4:  # a clip: shown as a film strip, its frames side by side
            from vtbench.engine.outputs import film_strip

            self.frames = pixels.shape[0]
            pixels = film_strip(pixels[None])[0]
        return pixels.permute(1, 2, 0).numpy()

    def reconstruction(self, image_id: str, index: int, original: np.ndarray) -> np.ndarray:
        from PIL import Image

        from vtbench.engine.outputs import reconstruction_path

        saved = reconstruction_path(self.run.folder, self.run.name, image_id)
        if saved.is_file():
            with Image.open(saved) as image:
                array = np.asarray(image.convert("RGB"))
            if array.shape == original.shape:
                return array
        return self._recompute(original)

    def _recompute(self, original: np.ndarray) -> np.ndarray:
        import torch

        from vtbench.engine.transforms import TokenizerRoundTrip
        from vtbench.tokenizers import TOKENIZERS

        self._set_up()
        if self._round_trip is None:
            name, options = self.run.record.component("tokenizer")
            tokenizer = TOKENIZERS.create(name, **options).to(self.device)
            self._round_trip = TokenizerRoundTrip(tokenizer, self._preprocessing, 1, name)
        pixels = torch.from_numpy(original).permute(2, 0, 1)[None].to(self.device).float().div(255)
        if self.frames:  # a clip's film strip: through the tokenizer as the clip it is
            from vtbench.engine.outputs import film_strip, from_film_strip
            from vtbench.engine.transforms import to_8bit_levels

            clip, _ = self._round_trip.clips(from_film_strip(pixels, self.frames))
            recon = film_strip(clip if self._round_trip.tokenizer.info.exact_levels else to_8bit_levels(clip)).mul(255).round()
            return recon.to(torch.uint8)[0].permute(1, 2, 0).cpu().numpy()
        recon = self._round_trip.reconstruct_8bit(pixels).mul(255).round().to(torch.uint8)
        return recon[0].permute(1, 2, 0).cpu().numpy()


def gallery_figure(entries: list[GalleryEntry]) -> Any:
    """A matplotlib figure: one row per image (original, reconstruction(s), then the zoomed
    crops of each, the crop outlined on the original)."""
    from matplotlib.patches import Rectangle

    from vtbench.plots import OKABE_ITO, _pyplot

    plt = _pyplot()
    columns = 2 * (1 + len(entries[0].reconstructions))
    figure, axes = plt.subplots(len(entries), columns, figsize=(1.7 * columns, 2.0 * len(entries)), dpi=150, squeeze=False)
    for row, entry in zip(axes, entries, strict=True):
        panels = [entry.original, *entry.reconstructions]
        names = ["original", *[f"{label.split('__')[0]}\n{entry.metric} {value:.4g}" for label, value in
                               zip(entry.labels, entry.values, strict=True)]]  # fmt: skip
        for i, (image, name) in enumerate(zip(panels, names, strict=True)):
            row[i].imshow(image)
            row[i].set_title(f"{entry.image_id}\n{name}" if i == 0 else name, fontsize=6)
            top, left, side = entry.crop
            row[i].add_patch(Rectangle((left - 0.5, top - 0.5), side, side, fill=False, edgecolor=OKABE_ITO[1], linewidth=0.8))
            row[len(panels) + i].imshow(entry.cropped(image), interpolation="nearest")
            row[len(panels) + i].set_title(f"zoom: {name.splitlines()[0]}", fontsize=6)
        for axis in row:
            axis.set_xticks([])
            axis.set_yticks([])
    figure.tight_layout()
    return figure
