"""Figures from run records (matplotlib, PNG / SVG / PDF by the file's suffix), sized for a
paper column (3.4 x 2.6 inches) in the Okabe–Ito colour-blind-safe palette.

- ``rate-distortion``: a quality metric against bits per pixel, one line per tokenizer
  family (codecs are drawn dashed as reference curves), 95% intervals as error bars;
- ``frequency``: each run's frequency response (the ``hf-fidelity`` power ratio per band);
- ``distribution``: the per-image values of one metric, one box per run;
- ``text``: a text metric (CER by default) per text-size bucket and per script, one bar per run;
- ``codebook``: codebook usage and perplexity (as fractions of the codebook), per run.

Records made under different protocols are refused in one figure (naming the differing
setting) unless ``allow_protocol_mismatch``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vtbench.errors import VtbenchError

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
KINDS = ("rate-distortion", "frequency", "distribution", "text", "codebook")
CODEC_FAMILIES = {"codec", "pixel"}


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend, in the house style."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    # text.parse_math off: labels, run names and image ids are data ("price $5_$10.png" is no formula)
    plt.rcParams.update({"font.size": 8, "axes.titlesize": 8, "legend.fontsize": 7, "svg.hashsalt": "vtbench", "text.parse_math": False})
    return plt


def _figure(panels: int = 1) -> tuple[Any, Any]:
    """A paper-column figure (3.4 x 2.6 in), or a full-width one with ``panels`` side by side."""
    return _pyplot().subplots(1, panels, figsize=(3.4 * panels, 2.6), dpi=200, squeeze=True)


def _checked(paths: str | Path | Iterable[str | Path], allow_protocol_mismatch: bool) -> list[dict[str, Any]]:
    """The records under ``paths``, refused when they disagree on a metric's protocol."""
    from vtbench.analysis import _records
    from vtbench.leaderboard import check_protocols

    records = _records(paths)
    if not records:
        raise VtbenchError("no run records to plot")
    if not allow_protocol_mismatch:
        check_protocols(records)
    return records


RATES = {"bpp": "bits_per_pixel", "tokens": "tokens_per_image"}  # the metric names, for the record's pooled cost fields


def _short(run_name: str) -> str:
    return run_name.split("__")[0]


def rate_distortion(paths: str | Path | Iterable[str | Path], quality: str = "psnr", rate: str = "bits_per_pixel",
                    allow_protocol_mismatch: bool = False) -> Any:  # fmt: skip
    """A quality metric against the rate, one line per (family, dataset); returns the figure."""
    from vtbench.analysis import rate_quality_curves, records_frame

    rate = RATES.get(rate, rate)
    if rate not in RATES.values():
        raise VtbenchError(f"--rate {rate!r}: choose bpp (bits per pixel) or tokens (tokens per image)")
    frame = records_frame(_checked(paths, allow_protocol_mismatch))
    curves = rate_quality_curves(frame, quality, rate)
    if not curves:
        raise VtbenchError(f"no record has both {quality!r} and {rate!r}: nothing to plot")
    families = _families(frame)
    figure, axes = _figure()
    for i, ((curve, dataset), points) in enumerate(sorted(curves.items())):
        low, high = points[quality] - points["ci_low"], points["ci_high"] - points[quality]
        errors = None if low.isna().any() or high.isna().any() else [low.to_numpy(), high.to_numpy()]
        style = "--" if families.get(curve) in CODEC_FAMILIES else "-"
        label = curve if len({d for _, d in curves}) == 1 else f"{curve} ({dataset})"
        axes.errorbar(points[rate], points[quality], yerr=errors, fmt="o" + style, color=OKABE_ITO[i % len(OKABE_ITO)], markersize=3,
                      linewidth=1, capsize=2, label=label)  # fmt: skip
    rates = frame[rate].dropna()
    if len(rates) and rates.max() > 10 * rates.min() > 0:
        from matplotlib import ticker

        axes.set_xscale("log")  # rates spanning an order of magnitude or more
        # plain decimal labels on the decades: the default ones are mathtext, which parse_math=False shows raw
        axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    unit = frame.loc[frame["metric"] == quality, "unit"].iloc[0]
    axes.set_xlabel("bits per pixel" if rate == "bits_per_pixel" else rate.replace("_", " "))
    axes.set_ylabel(f"{quality} ({unit})" if unit else quality)
    axes.grid(alpha=0.3)
    axes.legend(frameon=False)
    figure.tight_layout()
    return figure


def frequency_response(paths: str | Path | Iterable[str | Path], allow_protocol_mismatch: bool = False) -> Any:
    """Power ratio (reconstruction / original) per radial frequency band, one line per run."""
    records = _checked(paths, allow_protocol_mismatch)
    figure, axes = _figure()
    drawn = 0
    for record in records:
        details = record.details("hf-fidelity")
        if "power_ratio" not in details:
            continue
        axes.plot(details["band_centres"], details["power_ratio"], color=OKABE_ITO[drawn % len(OKABE_ITO)], linewidth=1,
                  label=_short(record.run_name))  # fmt: skip
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


def distribution(paths: str | Path | Iterable[str | Path], metric: str = "psnr", allow_protocol_mismatch: bool = False) -> Any:
    """The per-image values of ``metric``, one box per run."""
    from vtbench.analysis import load_images

    _checked(paths, allow_protocol_mismatch)
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
    axes.set_xticks(range(1, len(runs) + 1), [_short(run) for run in runs], rotation=45, ha="right")
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return figure


def text_errors(paths: str | Path | Iterable[str | Path], metric: str = "cer", allow_protocol_mismatch: bool = False) -> Any:
    """A text metric per text-size bucket (left) and per script (right), one bar per run."""
    import numpy as np

    from vtbench.metrics.text import LANGUAGES, SIZE_BUCKETS

    runs = [(r.run_name, r.details(metric)) for r in _checked(paths, allow_protocol_mismatch) if r.details(metric).get("by_size")]
    if not runs:
        raise VtbenchError(f"no record has {metric!r} with per-size details: run a text dataset with -m {metric}")
    figure, (by_size, by_script) = _figure(panels=2)
    for axes, key, order in ((by_size, "by_size", SIZE_BUCKETS), (by_script, "by_language", LANGUAGES)):
        groups = [g for g in order if any(g in details.get(key, {}) for _, details in runs)]
        width = 0.8 / len(runs)
        for i, (run, details) in enumerate(runs):
            values = [details.get(key, {}).get(g, np.nan) for g in groups]  # a bucket a run lacks is a gap, never 0
            axes.bar(np.arange(len(groups)) + (i - (len(runs) - 1) / 2) * width, values, width, label=_short(run),
                     color=OKABE_ITO[i % len(OKABE_ITO)])  # fmt: skip
        axes.set_xticks(range(len(groups)), groups)
        axes.set_xlabel("text height bucket" if key == "by_size" else "script")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3, axis="y")
    by_size.legend(frameon=False)
    figure.tight_layout()
    return figure


def codebook_usage(paths: str | Path | Iterable[str | Path], allow_protocol_mismatch: bool = False) -> Any:
    """Codes used and perplexity, each as a fraction of the codebook size, one pair of bars per run."""
    import numpy as np

    runs = []
    for record in _checked(paths, allow_protocol_mismatch):
        details = next((record.details(m) for m in ("codebook-usage", "codebook-perplexity", "codebook-entropy") if m in record.metrics),
                       {})  # fmt: skip
        if details.get("codebook_size"):
            runs.append((_short(record.run_name), details))
    if not runs:
        raise VtbenchError("no record has codebook statistics: run a discrete tokenizer with -m codebook-usage")
    figure, axes = _figure()
    x = np.arange(len(runs))
    used = [d["codes_used"] / d["codebook_size"] for _, d in runs]
    perplexity = [d["perplexity"] / d["codebook_size"] for _, d in runs]
    axes.bar(x - 0.2, used, 0.4, label="codes used", color=OKABE_ITO[0])
    axes.bar(x + 0.2, perplexity, 0.4, label="perplexity", color=OKABE_ITO[1])
    axes.set_xticks(x, [name for name, _ in runs], rotation=45, ha="right")
    axes.set_ylabel("fraction of the codebook")
    axes.set_ylim(0, 1.05)
    axes.grid(alpha=0.3, axis="y")
    axes.legend(frameon=False)
    figure.tight_layout()
    return figure


def save(figure: Any, out: str | Path) -> Path:
    """Write ``figure`` to ``out`` (.png, .svg or .pdf) atomically."""
    import io

    import matplotlib.pyplot as plt

    from vtbench.io import write_output

    out = Path(out)
    kind = out.suffix.lower()[1:]
    if kind not in ("png", "svg", "pdf"):
        raise VtbenchError(f"{out}: plots are written as .png, .svg or .pdf")
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format=kind, metadata={"Date": None} if kind in ("svg", "pdf") else None)
    finally:
        plt.close(figure)
    return write_output(out, buffer.getvalue(), "the figure")


def _families(frame: Any) -> dict[str, str]:
    """curve -> tokenizer family (codec, discrete, ...), from the registry's tags."""
    from vtbench.tokenizers import TOKENIZERS

    out = {}
    for curve in frame["curve"].unique():
        out[curve] = TOKENIZERS.get(curve).tags.get("family", "") if curve in TOKENIZERS else ""
    return out
