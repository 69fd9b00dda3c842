"""Figures from run records (matplotlib, PNG / SVG / PDF by the file's suffix), sized for a
paper column (3.4 x 2.6 inches) in the Okabe–Ito colour-blind-safe palette.

- ``rate-distortion``: a quality metric against bits per pixel, one line per tokenizer
  family (codecs are drawn dashed as reference curves), 95% intervals as error bars;
- ``frequency``: each run's frequency response (the ``hf-fidelity`` power ratio per band);
- ``distribution``: the per-image values of one metric, one box per run;
- ``text``: a text metric (CER by default) per text-size bucket and per script, one bar per run;
- ``codebook``: codebook usage and perplexity (as fractions of the codebook), per run.

Every figure of one set of records gives each tokenizer family (``jpeg``, ``webp``, a
tokenizer's preset family) the same colour and marker (runs of one family in lighter shades),
puts its legend outside the axes, and leaves out a lossless run (every image at the PSNR
ceiling) with a note in the legend instead of stretching the axes to it.

Records made under different protocols are refused in one figure (naming the differing
setting) unless ``allow_protocol_mismatch``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vtbench.errors import VtbenchError

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#F0E442"]  # most distinct first
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
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
    """A paper-column figure (3.4 x 2.6 in), or a full-width one with ``panels`` side by side;
    constrained layout, so a legend placed outside the axes gets its own room."""
    return _pyplot().subplots(1, panels, figsize=(3.4 * panels, 2.6), dpi=200, squeeze=True, layout="constrained")


def _legend(figure: Any, axes: Any, notes: Iterable[str] = ()) -> None:
    """The legend of ``axes`` below every axes (outside the data), in up to three columns,
    the entries labelled as ``notes`` last."""
    handles, labels = axes.get_legend_handles_labels()
    notes = set(notes)
    order = sorted(range(len(labels)), key=lambda i: labels[i] in notes)
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 3), frameon=False, columnspacing=1.2,
                      handlelength=1.8)  # fmt: skip


def family_styles(records: list[Any]) -> dict[str, tuple[str, str]]:
    """family -> (colour, marker), fixed by the sorted family names of ``records``: every figure
    of one results folder (and the report's) draws a family alike."""
    from vtbench.analysis import curve_name

    families = sorted({curve_name(record) for record in records})
    return {family: (OKABE_ITO[i % len(OKABE_ITO)], MARKERS[i % len(MARKERS)]) for i, family in enumerate(families)}


def _run_colours(records: list[Any], drawn: list[Any]) -> dict[str, str]:
    """run name -> colour for per-run figures: its family's colour, lighter for each further
    run of the family."""
    from matplotlib.colors import to_hex, to_rgb

    from vtbench.analysis import curve_name

    styles, seen, out = family_styles(records), {}, {}
    for record in drawn:
        family = curve_name(record)
        shade = seen[family] = seen.get(family, -1) + 1
        colour = to_rgb(styles[family][0])
        mix = min(0.15 * shade, 0.6)  # towards white
        out[record.run_name] = to_hex(tuple(c + (1 - c) * mix for c in colour))
    return out


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


def rate_distortion(paths: str | Path | Iterable[str | Path], quality: str = "psnr", rate: str = "bpp",
                    allow_protocol_mismatch: bool = False) -> Any:  # fmt: skip
    """A quality metric against the rate, one line per (family, dataset); returns the figure.
    ``rate``: ``bpp`` (bits per pixel) or ``tokens`` (tokens per image)."""
    from vtbench.analysis import is_lossless, rate_quality_curves, records_frame
    from vtbench.metrics import metric_label

    given = rate
    rate = RATES.get(rate.lower(), rate.lower())
    if rate not in RATES.values():
        raise VtbenchError(f"--rate {given!r}: choose bpp (bits per pixel) or tokens (tokens per image)")
    rate_name = next(short for short, long in RATES.items() if long == rate)
    records = _checked(paths, allow_protocol_mismatch)
    frame = records_frame(records)
    curves = rate_quality_curves(frame, quality, rate)
    if not curves:
        raise VtbenchError(f"no record has both {quality!r} and {rate_name!r}: nothing to plot")
    lossless_runs = {record.run_name for record in records if is_lossless(record)}
    families, styles = _families(frame), family_styles(records)
    several_datasets = len({d for _, d in curves}) > 1
    figure, axes = _figure()
    drawn_rates, notes = [], []
    for (curve, dataset), points in sorted(curves.items()):
        label = f"{curve} ({dataset})" if several_datasets else curve
        if set(points["run"]) <= lossless_runs:  # the lossless ceiling: said, not drawn
            notes.append(f"{label}: lossless, not drawn")
            continue
        low, high = points[quality] - points["ci_low"], points["ci_high"] - points[quality]
        errors = None if low.isna().any() or high.isna().any() else [low.to_numpy(), high.to_numpy()]
        style = "--" if families.get(curve) in CODEC_FAMILIES else "-"
        colour, marker = styles.get(curve, (OKABE_ITO[0], "o"))
        axes.errorbar(points[rate], points[quality], yerr=errors, fmt=marker + style, color=colour, markersize=3, linewidth=1,
                      capsize=2, label=label)  # fmt: skip
        drawn_rates += list(points[rate])
    if not drawn_rates:
        raise VtbenchError(f"every {quality} curve is lossless: nothing to plot against the rate")
    for note in notes:
        axes.plot([], [], " ", label=note)
    if max(drawn_rates) > 10 * min(drawn_rates) > 0:
        from matplotlib import ticker

        axes.set_xscale("log")  # rates spanning an order of magnitude or more
        # plain decimal labels on the decades: the default ones are mathtext, which parse_math=False shows raw
        axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    unit = frame.loc[frame["metric"] == quality, "unit"].iloc[0]
    axes.set_xlabel("rate (bits per pixel)" if rate == "bits_per_pixel" else "rate (tokens per image)")
    axes.set_ylabel(metric_label(quality, unit or ""))
    axes.grid(alpha=0.3)
    _legend(figure, axes, notes)
    return figure


def frequency_response(paths: str | Path | Iterable[str | Path], allow_protocol_mismatch: bool = False) -> Any:
    """Power ratio (reconstruction / original) per radial frequency band, one line per run."""
    records = _checked(paths, allow_protocol_mismatch)
    having = [record for record in records if "power_ratio" in record.details("hf-fidelity")]
    if not having:
        raise VtbenchError("no record has hf-fidelity details: run with -m hf-fidelity")
    colours, styles = _run_colours(records, having), family_styles(records)
    figure, axes = _figure()
    from vtbench.analysis import curve_name

    for record in having:
        details = record.details("hf-fidelity")
        axes.plot(details["band_centres"], details["power_ratio"], color=colours[record.run_name], linewidth=1,
                  marker=styles[curve_name(record)][1], markersize=2, label=_short(record.run_name))  # fmt: skip
    axes.axhline(1.0, color="grey", linewidth=0.5)
    ratios = [v for record in having for v in record.details("hf-fidelity")["power_ratio"] if v is not None and v > 0]
    if ratios and max(ratios) > 100 * min(ratios):  # a ratio spanning decades (a band near zero power): read it on a log axis
        from matplotlib import ticker

        axes.set_yscale("log")
        axes.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axes.yaxis.set_minor_formatter(ticker.NullFormatter())
    axes.set_xlabel("spatial frequency (cycles/pixel)")
    axes.set_ylabel("power ratio (recon. / original)")
    axes.grid(alpha=0.3)
    _legend(figure, axes)
    return figure


def distribution(paths: str | Path | Iterable[str | Path], metric: str = "psnr", allow_protocol_mismatch: bool = False) -> Any:
    """The per-image values of ``metric``, one box per run."""
    from vtbench.analysis import is_lossless, load_images
    from vtbench.metrics import metric_label

    records = _checked(paths, allow_protocol_mismatch)
    images = load_images(paths)
    if images.empty or metric not in images.columns:
        raise VtbenchError(f"no per-image {metric!r} values in these records")
    ok = images[images["status"] == "ok"]
    by_name = {record.run_name: record for record in records}
    lossless = [run for run in dict.fromkeys(ok["run"]) if run in by_name and is_lossless(by_name[run])]
    runs = [run for run in dict.fromkeys(ok["run"]) if run not in lossless]
    if not runs:
        raise VtbenchError(f"every run with per-image {metric!r} values is lossless: nothing to draw")
    colours = _run_colours(records, [by_name[run] for run in runs if run in by_name])
    figure, axes = _figure()
    figure.set_figheight(max(2.6, 0.8 + 0.16 * len(runs)))  # one horizontal box per run, their names never crowded
    boxes = axes.boxplot([ok.loc[ok["run"] == run, metric].astype(float).to_numpy() for run in runs][::-1], patch_artist=True,
                         widths=0.6, orientation="horizontal", medianprops={"color": "black"}, flierprops={"markersize": 3})  # fmt: skip
    for run, box in zip(runs[::-1], boxes["boxes"], strict=True):
        box.set_facecolor(colours.get(run, OKABE_ITO[0]))
        box.set_alpha(0.7)
    axes.set_yticks(range(1, len(runs) + 1), [_short(run) for run in runs][::-1])
    unit = next((e.unit for r in records for m, e in r.metrics.items() if m == metric), "")
    axes.set_xlabel(metric_label(metric, unit))
    axes.grid(alpha=0.3, axis="x")
    notes = [f"{_short(run)}: lossless, not drawn" for run in lossless]
    for note in notes:
        axes.plot([], [], " ", label=note)
    _legend(figure, axes, notes)
    return figure


def text_errors(paths: str | Path | Iterable[str | Path], metric: str = "cer", allow_protocol_mismatch: bool = False) -> Any:
    """A text metric per text-size bucket (left) and per script (right), one bar per run."""
    import numpy as np

    from vtbench.metrics import metric_label
    from vtbench.metrics.text import LANGUAGES, SIZE_BUCKETS

    records = _checked(paths, allow_protocol_mismatch)
    having = [r for r in records if r.details(metric).get("by_size")]
    runs = [(r.run_name, r.details(metric)) for r in having]
    if not runs:
        raise VtbenchError(f"no record has {metric!r} with per-size details: run a text dataset with -m {metric}")
    colours = _run_colours(records, having)
    figure, (by_size, by_script) = _figure(panels=2)
    for axes, key, order in ((by_size, "by_size", SIZE_BUCKETS), (by_script, "by_language", LANGUAGES)):
        groups = [g for g in order if any(g in details.get(key, {}) for _, details in runs)]
        width = 0.8 / len(runs)
        for i, (run, details) in enumerate(runs):
            values = [details.get(key, {}).get(g, np.nan) for g in groups]  # a bucket a run lacks is a gap, never 0
            axes.bar(np.arange(len(groups)) + (i - (len(runs) - 1) / 2) * width, values, width, label=_short(run),
                     color=colours[run])  # fmt: skip
        axes.set_xticks(range(len(groups)), groups)
        axes.set_xlabel("text height bucket" if key == "by_size" else "script")
        axes.set_ylabel(metric_label(metric))
        axes.grid(alpha=0.3, axis="y")
    _legend(figure, by_size)
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
    axes.set_xticks(x, [name for name, _ in runs], rotation=90)  # upright names: narrow boxes that do not collide
    axes.set_ylabel("fraction of the codebook")
    axes.set_ylim(0, 1.05)
    axes.grid(alpha=0.3, axis="y")
    _legend(figure, axes)
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
