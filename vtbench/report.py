"""One self-contained HTML report of run records: the sortable leaderboard, warnings (few
samples, mixed protocols, metrics that were not computed, a gallery that could not be made;
each once, with its runs), Bjøntegaard deltas against a baseline family, the figures
(inline SVG), a worst-case gallery (embedded PNGs: each hard image once, its original
beside every run's reconstruction, with zoomed crops) and each run's protocol and
environment. No network: styles, script and images are in the file.

Sorting: click a column header, or open the file with ``#sort=COLUMN`` (``-COLUMN``
descending). When the page and its images have loaded, ``body[data-ready]`` is set and ``data-images-ok``
says whether every figure rendered, so a headless browser can check the page.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vtbench.errors import VtbenchError
from vtbench.schema import RunRecord

FEW_SAMPLES = 50  # below this many images an interval is wide and a Fréchet distance biased

SCRIPT = """
function sortTable(key, descending) {
  const table = document.getElementById('leaderboard');
  const headers = [...table.tHead.rows[0].cells];
  const wanted = key.toLowerCase();  // #sort=-PSNR and #sort=tokenizer: any case
  const column = headers.findIndex(c => (c.dataset.key || '').toLowerCase() === wanted);
  if (column < 0) {
    document.getElementById('sort-note').textContent = 'No column "' + key + '" to sort by; columns: ' +
      headers.map(c => c.dataset.key).join(', ') + '.';
    return;
  }
  const numeric = headers[column].dataset.type === 'number';
  const rows = [...table.tBodies[0].rows];
  const number = r => { const v = r.cells[column].dataset.value; return v === undefined || v === '' ? NaN : Number(v); };
  const text = r => r.cells[column].textContent.trim();
  rows.sort((a, b) => {
    if (!numeric) return descending ? text(b).localeCompare(text(a)) : text(a).localeCompare(text(b));
    const x = number(a), y = number(b);
    if (isNaN(x) && isNaN(y)) return 0; if (isNaN(x)) return 1; if (isNaN(y)) return -1;  // n/a last either way
    return descending ? y - x : x - y;
  });
  rows.forEach(r => table.tBodies[0].appendChild(r));
  headers.forEach(c => { c.classList.remove('sorted-asc', 'sorted-desc'); c.removeAttribute('aria-sort'); });
  headers[column].classList.add(descending ? 'sorted-desc' : 'sorted-asc');
  headers[column].setAttribute('aria-sort', descending ? 'descending' : 'ascending');
  table.dataset.sortedBy = (descending ? '-' : '') + headers[column].dataset.key;
  document.getElementById('sort-note').textContent = '';
}
document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('#leaderboard th[data-key]').forEach(th => th.addEventListener('click', () => {
    const table = document.getElementById('leaderboard');
    sortTable(th.dataset.key, table.dataset.sortedBy === th.dataset.key);
  }));
  const match = location.hash.match(/sort=(-?)([^&]+)/i);
  if (match) sortTable(decodeURIComponent(match[2]), match[1] === '-');
});
window.addEventListener('load', () => {  // after every embedded image has decoded
  const images = [...document.querySelectorAll('img')];
  const svgs = [...document.querySelectorAll('figure svg')];
  document.body.dataset.imagesOk = String(images.every(i => i.complete && i.naturalWidth > 0) &&
                                          svgs.every(s => s.getBBox().width > 0));
  document.body.dataset.ready = 'true';
});
"""

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{cursor:pointer;background:#f3f3f3}td.name{text-align:left}.best{font-weight:bold}.second{text-decoration:underline}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}#sort-note{color:#D55E00}
.warning{background:#fff4e5;border-left:4px solid #E69F00;padding:4px 8px;margin:4px 0}.warning ul{margin:4px 0}
figure{display:inline-block;vertical-align:top;width:48%;min-width:420px;margin:0 1% 1em 0}
figure svg{width:100%;height:auto}details{margin:4px 0}pre{background:#f7f7f7;padding:6px;overflow-x:auto}
.gallery td,.gallery th{text-align:center;vertical-align:top;font-size:80%}.gallery img{width:128px;height:auto}
.scroll{overflow-x:auto}
.gallery img.zoom{image-rendering:pixelated}
"""
THUMBNAIL = 128  # px, longer side of the whole-image panels; crops keep their pixels and are enlarged by the browser


def _figures(records: list[RunRecord]) -> list[tuple[str, str]]:
    """(caption, inline SVG) for each figure the records support: a rate–distortion figure for
    every quality metric the records have, then the per-run figures (each drawn from the
    records loaded once)."""
    from vtbench import plots
    from vtbench.metrics import metric_label

    quality = sorted({name for r in records if r.task == "reconstruction" for name, e in r.metrics.items() if e.kind == "quality"},
                     key=lambda name: (name != "psnr", name))  # fmt: skip

    def curve(name: str) -> Any:
        return plots.rate_distortion(records, name, allow_protocol_mismatch=True)

    makers = [(f"Rate–distortion ({metric_label(name)})", lambda name=name: curve(name)) for name in quality]
    makers += [("Frequency response", lambda: plots.frequency_response(records, allow_protocol_mismatch=True)),
               ("Per-image PSNR", lambda: plots.distribution(records, "psnr", allow_protocol_mismatch=True)),
               ("Character error rate by text size and script", lambda: plots.text_errors(records, "cer", True)),
               ("Codebook usage", lambda: plots.codebook_usage(records, allow_protocol_mismatch=True))]  # fmt: skip
    figures = []
    for caption, make in makers:
        try:
            figure = make()
        except VtbenchError:
            continue  # the records hold no data for this figure
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
        import matplotlib.pyplot as plt

        plt.close(figure)
        svg = buffer.getvalue()
        figures.append((caption, svg[svg.index("<svg") :]))
    return figures


def _warnings(records: list[RunRecord]) -> dict[str, list[str]]:
    """Each warning once, with the runs it concerns: {message: [run, ...]}, in first-seen order."""
    grouped: dict[str, list[str]] = {}

    def add(message: str, run: str) -> None:
        grouped.setdefault(message, []).append(run)

    for record in records:
        evaluated = record.samples.evaluated
        if evaluated < FEW_SAMPLES:
            add(f"fewer than {FEW_SAMPLES} images: intervals are wide and Fréchet distances biased", f"{record.run_name} ({evaluated})")
        for name, entry in record.metrics.items():
            if entry.status != "ok":
                add(f"{name} {entry.status}: {entry.reason or ''}", record.run_name)
            for note in entry.warnings:
                add(f"{name}: {note}", record.run_name)
    protocols = {json.dumps(r.protocol.preprocessing, sort_keys=True) for r in records}
    if len(protocols) > 1:
        grouped[f"the records were made under {len(protocols)} different preprocessing settings: compare within one only"] = []
    return grouped


def _warnings_html(grouped: dict[str, list[str]]) -> str:
    """One collapsed line per warning, the runs it concerns listed once inside."""
    if not grouped:
        return "<p>None.</p>"
    out = []
    for message, runs in grouped.items():
        if not runs:
            out.append(f'<div class="warning">{html.escape(message)}</div>')
            continue
        items = "".join(f"<li>{html.escape(run)}</li>" for run in runs)
        count = f"{len(runs)} run{'s' if len(runs) > 1 else ''}"
        out.append(f'<details class="warning"><summary>{html.escape(message)} ({count})</summary><ul>{items}</ul></details>')
    return "\n".join(out)


def _png_uri(array: Any, thumbnail: bool = False) -> str:
    import base64

    from PIL import Image

    image = Image.fromarray(array)
    if thumbnail and max(image.size) > THUMBNAIL:
        image.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _gallery(records: list[RunRecord], metric: str, k: int) -> tuple[str, list[str]]:
    """The gallery section's HTML: per dataset, the ``k`` images worst by ``metric`` across its
    reconstruction runs, each image once (its original, then every lossy run's reconstruction,
    each with a zoom on the window where the run that did worst errs most); and a warning for
    each dataset whose gallery could not be made."""
    from vtbench.gallery import build_gallery_across

    by_dataset: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.task == "reconstruction" and metric in record.metrics and record.metrics[metric].status == "ok":
            by_dataset.setdefault(record.dataset.manifest_sha256 or record.dataset_name, []).append(record)
    sections, problems = [], []
    for group in by_dataset.values():
        dataset = group[0].dataset_name
        try:
            entries = build_gallery_across([record.path for record in group], metric, k)
        except Exception as exc:  # a tokenizer or dataset that cannot be rebuilt here: said, not hidden
            problems.append(f"{dataset}: no gallery ({type(exc).__name__}: {exc})")
            continue
        rows = []
        for entry in entries:
            top, left, side = entry.crop
            head = "".join(f"<th>{html.escape(label.split('__')[0])}</th>" for label in entry.labels)
            whole = "".join(f'<td><img src="{_png_uri(recon, True)}" alt="{html.escape(label)}"><br>{html.escape(metric)} {value:.4g}</td>'
                            for recon, label, value in zip(entry.reconstructions, entry.labels, entry.values, strict=True))  # fmt: skip
            zooms = "".join(f'<td><img class="zoom" src="{_png_uri(entry.cropped(recon))}" alt="zoomed {html.escape(label)}"></td>'
                            for recon, label in zip(entry.reconstructions, entry.labels, strict=True))  # fmt: skip
            rows.append(
                f'<h4>{html.escape(entry.image_id)}</h4><div class="scroll"><table class="gallery"><tr><th>original</th>{head}</tr>'
                f'<tr><td><img src="{_png_uri(entry.original, True)}" alt="original {html.escape(entry.image_id)}"></td>{whole}</tr>'
                f'<tr><td><img class="zoom" src="{_png_uri(entry.cropped(entry.original))}" alt="zoomed original"><br>'
                f"zoom at ({left}, {top}), {side} px</td>{zooms}</tr></table></div>"
            )
        sections.append(f"<h3>{html.escape(dataset)}</h3>\n" + "\n".join(rows))
    return "\n".join(sections), problems


def _bd_section(records: list[RunRecord], baseline: str | None) -> str:
    from vtbench.analysis import bd_table, records_frame
    from vtbench.leaderboard import format_value

    frame = records_frame(records)
    if baseline is None:
        if "jpeg" not in set(frame["curve"]):
            return "<p>No baseline family (pass one with --bd-baseline).</p>"
        baseline = "jpeg"
    try:
        table = bd_table(frame, baseline, "psnr")
    except VtbenchError as exc:
        return f"<p>{html.escape(str(exc))}</p>"
    head = "".join(f"<th>{h}</th>" for h in ("family", "dataset", "points", "BD-rate (%) ↓", "BD-PSNR (dB) ↑", "note"))
    rows = "".join(
        f'<tr><td class="name">{html.escape(r.curve)}</td><td class="name">{html.escape(r.dataset)}</td><td>{r.points}</td>'
        f'<td>{format_value(r.bd_rate)}</td><td>{format_value(r.bd_quality)}</td><td class="name">{html.escape(r.note)}</td></tr>'
        for r in table.itertuples()
    )
    return (f"<p>Each family's PSNR against bits per pixel, compared with <b>{html.escape(baseline)}</b> on the same dataset "
            "(VCEG-M33 cubic fit; negative BD-rate: fewer bits for the same PSNR).</p>"
            f'<table id="bd"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')  # fmt: skip


def build_report(paths: str | Path | Iterable[str | Path], title: str = "vtbench report", allow_protocol_mismatch: bool = False,
                 bd_baseline: str | None = None, gallery_metric: str | None = None, gallery_k: int = 2) -> str:  # fmt: skip
    """The report's HTML text for every record under ``paths``. Records made under different
    protocols are refused (naming the setting) unless ``allow_protocol_mismatch``; the
    Bjøntegaard table uses ``bd_baseline`` (default ``jpeg`` when there is one); the gallery
    shows the ``gallery_k`` images worst by ``gallery_metric`` across each dataset's runs, each
    once with every run's reconstruction (0: no gallery; default PSNR when a run has it per
    image, else no gallery, as for generation runs)."""
    from vtbench.leaderboard import build_leaderboard, check_protocols, format_value
    from vtbench.schema import find_records

    roots = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    records = [record for root in roots for record in find_records(root)]
    if not records:
        raise VtbenchError(f"no run records under {', '.join(map(str, roots))}")
    if not allow_protocol_mismatch:
        check_protocols(records)
    if gallery_k < 0:
        raise VtbenchError(f"--gallery-k must be 0 (no gallery) or more, got {gallery_k}")
    per_image = sorted({m for r in records for m, e in r.metrics.items() if e.aggregation == "mean"})
    if gallery_metric is None:
        gallery_metric, gallery_k = "psnr", gallery_k if "psnr" in per_image else 0
    if gallery_k and gallery_metric not in per_image:
        raise VtbenchError(f"--gallery-metric {gallery_metric!r}: no record has it per image (per-image metrics: {', '.join(per_image)})")
    board = build_leaderboard(records, allow_protocol_mismatch=True)
    marks = board.places()
    text_columns = {"tokenizer", "dataset"}
    head = "".join(f'<th data-key="{html.escape(k)}" data-type="{"text" if k in text_columns else "number"}">{html.escape(h)}</th>'
                   for k, h in [("rank", "rank"), ("tokenizer", board.headings[0]), ("dataset", board.headings[1]),
                                *[(c.key, c.display(board.task)) for c in board.columns], ("images", "images")])  # fmt: skip
    body = []
    for i, row in enumerate(board.rows):
        cells = [f'<td data-value="{row["rank"]}">{row["rank"]}</td>', f'<td class="name">{html.escape(row["tokenizer"])}</td>',
                 f'<td class="name">{html.escape(row["dataset"])}</td>']  # fmt: skip
        for column in board.columns:
            value = row.get(column.key)
            number = "" if not isinstance(value, (int, float)) else repr(float(value))
            css = {1: ' class="best"', 2: ' class="second"'}.get(marks.get((i, column.key)), "")
            cells.append(f'<td data-value="{number}"{css}>{html.escape(format_value(value))}</td>')
        cells.append(f'<td data-value="{row["images"]}">{row["images"]}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    gallery, gallery_problems = _gallery(records, gallery_metric, gallery_k) if gallery_k > 0 else ("", [])
    reconstruction = any(record.task == "reconstruction" for record in records)  # generation runs: no BD-rate, no gallery
    grouped = _warnings(records)
    for problem in gallery_problems:
        grouped.setdefault("no gallery", []).append(problem)
    warnings = _warnings_html(grouped)
    figures = "".join(f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>" for caption, svg in _figures(records))
    runs = "".join(
        f"<details><summary>{html.escape(r.run_name)}</summary><pre>"
        + html.escape(json.dumps({"protocol": r.protocol.to_dict(), "config": r.config, "environment": r.environment}, indent=2))
        + "</pre></details>"
        for r in records
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style><script>{SCRIPT}</script></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        f"<p>{len(records)} run(s). Best value of each metric in bold, second underlined (by direction, within each "
        f"{board.headings[1]}); "
        "click a header to sort.</p>\n"
        f'<h2>Leaderboard</h2>\n<p id="sort-note"></p><table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>\n'
        + "\n".join(body)
        + "\n</tbody></table>\n"
        f"<h2>Warnings</h2>\n{warnings}\n"
        + (f"<h2>Bjøntegaard deltas</h2>\n{_bd_section(records, bd_baseline)}\n" if reconstruction else "")
        + f"<h2>Figures</h2>\n{figures or '<p>No figure applies to these records.</p>'}\n"
        + (
            f"<h2>Worst images by {html.escape(gallery_metric)} (mean over the runs)</h2>\n{gallery or '<p>No gallery.</p>'}\n"
            if reconstruction
            else ""
        )  # fmt: skip
        + f"<h2>Runs: protocol and environment</h2>\n{runs}\n</body></html>\n"
    )


def write_report(paths: str | Path | Iterable[str | Path], out: str | Path, title: str = "vtbench report", **options: Any) -> Path:
    """Write :func:`build_report` (``options`` are its keyword arguments) to ``out``."""
    from vtbench.io import write_output

    out = Path(out)
    write_output(out, build_report(paths, title, **options).encode("utf-8"))
    return out
