"""Figures from run records (matplotlib, PNG / SVG / PDF by the file's suffix), sized for a
paper column (3.4 x 2.6 inches) in the Okabe–Ito colour-blind-safe palette.

- ``rate-distortion``: a quality metric against bits per pixel, one line per tokenizer
  family (codecs are drawn dashed as reference curves), 95% intervals as error bars;
- ``frequency``: each run's frequency response (the ``hf-fidelity`` power ratio per band);
- ``distribution``: the per-image values of one metric, one box per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vtbench.errors import VtbenchError

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
KINDS = ("rate-distortion", "frequency", "distribution")
CODEC_FAMILIES = {"codec", "pixel"}


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 8, "legend.fontsize": 7, "svg.hashsalt": "vtbench"})
    return plt.subplots(figsize=(3.4, 2.6), dpi=200)


def rate_distortion(paths: str | Path | Iterable[str | Path], quality: str = "psnr", rate: str = "bits_per_pixel") -> Any:
    """A quality metric against the rate, one line per (family, dataset); returns the figure."""
    from vtbench.analysis import load_records, rate_quality_curves

    frame = load_records(paths)
    curves = rate_quality_curves(frame, quality, rate)
    if not curves:
        raise VtbenchError(f"no record has both {quality!r} and {rate!r}: nothing to plot")
    families = _families(frame)
    figure, axes = _figure()
    intervals = frame[frame["metric"] == quality].set_index("run")[["ci_low", "ci_high"]]
    for i, ((curve, dataset), points) in enumerate(sorted(curves.items())):
        low = points[quality] - intervals.loc[points["run"], "ci_low"].to_numpy()
        high = intervals.loc[points["run"], "ci_high"].to_numpy() - points[quality]
        errors = None if low.isna().any() or high.isna().any() else [low.to_numpy(), high]
        style = "--" if families.get(curve) in CODEC_FAMILIES else "-"
        label = curve if len({d for _, d in curves}) == 1 else f"{curve} ({dataset})"
        axes.errorbar(points[rate], points[quality], yerr=errors, fmt="o" + style, color=OKABE_ITO[i % len(OKABE_ITO)], markersize=3,
                      linewidth=1, capsize=2, label=label)  # fmt: skip
    rates = frame[rate].dropna()
    if len(rates) and rates.max() > 10 * rates.min() > 0:
        axes.set_xscale("log")  # rates spanning an order of magnitude or more
    unit = frame.loc[frame["metric"] == quality, "unit"].iloc[0]
    axes.set_xlabel("bits per pixel" if rate == "bits_per_pixel" else rate.replace("_", " "))
    axes.set_ylabel(f"{quality} ({unit})" if unit else quality)
    axes.grid(alpha=0.3)
    axes.legend(frameon=False)
    figure.tight_layout()
    return figure


def frequency_response(paths: str | Path | Iterable[str | Path]) -> Any:
    """Power ratio (reconstruction / original) per radial frequency band, one line per run."""
    from vtbench.analysis import _records

    figure, axes = _figure()
    drawn = 0
    for record, _ in _records(paths):
        details = record["metrics"].get("hf-fidelity", {}).get("details") or {}
        if "power_ratio" not in details:
            continue
        axes.plot(details["band_centres"], details["power_ratio"], color=OKABE_ITO[drawn % len(OKABE_ITO)], linewidth=1,
                  label=record["run_name"].split("__")[0])  # fmt: skip
        drawn += 1
    if not drawn:
        raise VtbenchError("no record has hf-fidelity details: run with -m hf-fidelity")
    axes.axhline(1.0, color="grey", linewidth=0.5)
    axes.set_xlabel("spatial frequency (cycles/pixel)")
    axes.set_ylabel("power ratio")
    axes.grid(alpha=0.3)
    axes.legend(frameon=False)
    figure.tight_layout()
    return figure


def distribution(paths: str | Path | Iterable[str | Path], metric: str = "psnr") -> Any:
    """The per-image values of ``metric``, one box per run."""
    from vtbench.analysis import load_images

    images = load_images(paths)
    if images.empty or metric not in images.columns:
        raise VtbenchError(f"no per-image {metric!r} values in these records")
    ok = images[images["status"] == "ok"]
    runs = list(dict.fromkeys(ok["run"]))
    figure, axes = _figure()
    boxes = axes.boxplot([ok.loc[ok["run"] == run, metric].astype(float).to_numpy() for run in runs], patch_artist=True, widths=0.6)
    for i, box in enumerate(boxes["boxes"]):
        box.set_facecolor(OKABE_ITO[i % len(OKABE_ITO)])
        box.set_alpha(0.6)
    axes.set_xticks(range(1, len(runs) + 1), [run.split("__")[0] for run in runs], rotation=45, ha="right")
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return figure


def save(figure: Any, out: str | Path) -> Path:
    """Write ``figure`` to ``out`` (.png, .svg or .pdf) atomically."""
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise VtbenchError(f"{out}: plots are written as .png, .svg or .pdf")
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp{out.suffix}")
    figure.savefig(temporary, metadata={"Date": None} if out.suffix.lower() in (".svg", ".pdf") else None)
    plt.close(figure)
    temporary.replace(out)
    return out


def _families(frame: Any) -> dict[str, str]:
    """curve -> tokenizer family (codec, discrete, ...), from the registry's tags."""
    from vtbench.tokenizers import TOKENIZERS

    out = {}
    for curve in frame["curve"].unique():
        out[curve] = TOKENIZERS.get(curve).tags.get("family", "") if curve in TOKENIZERS else ""
    return out
