"""Comparative tables from run records: terminal, Markdown, CSV, JSON and HTML.

Rows are runs (tokenizer x dataset), ranked within each dataset by one metric; columns
are the quality metrics with their direction (↑/↓), then the cost columns (bits per
pixel, tokens per image), then sample counts. A metric a run lacks is shown as ``n/a``,
never dropped.
"""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass
from typing import Any

from vtbench.errors import VtbenchError
from vtbench.io import csv_safe, parse_float, to_json
from vtbench.metrics import other_extractor
from vtbench.schema import RunRecord

FORMATS = ("table", "md", "csv", "json", "html", "latex")


@dataclass
class Column:
    key: str
    higher_is_better: bool | None
    kind: str
    unit: str = ""
    extractor: str | None = None

    @property
    def shown(self) -> str:
        """The metric id, with its feature extractor when that is not the metric's usual one
        (``kid[efficientnet-lite0]``: never to be read as an Inception number)."""
        return self.key + (f"[{self.extractor}]" if other_extractor(self.key, self.extractor) else "")

    @property
    def arrow(self) -> str:
        return "" if self.higher_is_better is None else (" ↑" if self.higher_is_better else " ↓")

    @property
    def header(self) -> str:
        return f"{self.shown}{self.arrow}"

    def display(self, task: str = "reconstruction") -> str:
        """The display name with unit and direction, for readers (``PSNR (dB) ↑``)."""
        from vtbench.metrics import metric_label

        return metric_label(self.key, self.unit, task, self.extractor) + self.arrow


@dataclass
class Leaderboard:
    """A ranked table: ``columns`` describe metric columns; ``rows`` hold plain values."""

    rank_by: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    show_intervals: bool = False  # append 95% bootstrap intervals in md / html / table
    task: str = "reconstruction"  # of every row: reconstruction, generation, or mixed

    @property
    def headings(self) -> tuple[str, str]:
        """What the subject and data columns are called (CSV/JSON keep the keys tokenizer/dataset)."""
        return {"reconstruction": ("tokenizer", "dataset"), "generation": ("generator", "reference")}.get(
            self.task, ("tokenizer / generator", "dataset / reference"))  # fmt: skip

    def render(self, fmt: str = "md") -> str:
        if fmt not in FORMATS:
            raise VtbenchError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        renderers = {"md": self.to_markdown, "csv": self.to_csv, "json": self.to_json, "html": self.to_html, "table": self.to_markdown,
                     "latex": self.to_latex}  # fmt: skip
        return renderers[fmt]()

    def places(self, rows: list[dict[str, Any]] | None = None) -> dict[tuple[int, str], int]:
        """(row index, metric) -> 1 or 2 for the best and second-best value of each quality
        metric within each dataset (each protocol of it), by the metric's direction (ties share
        the place). Cost columns (bits per pixel, tokens) are never marked: fewer bits is a
        trade-off, not a win."""
        rows = self.rows if rows is None else rows
        marks: dict[tuple[int, str], int] = {}
        for column in self.columns:
            if column.higher_is_better is None or column.kind == "cost":
                continue
            for group in {_group(row) for row in rows}:
                indexed = [(i, row.get(column.key)) for i, row in enumerate(rows) if _group(row) == group]
                values = sorted(
                    {v for _, v in indexed if isinstance(v, (int, float)) and math.isfinite(v)}, reverse=column.higher_is_better
                )
                if len([v for _, v in indexed if isinstance(v, (int, float))]) < 2:
                    continue
                for place, value in enumerate(values[:2], start=1):
                    marks.update({(i, column.key): place for i, v in indexed if v == value})
        return marks

    def to_latex(self) -> str:
        """A booktabs table for a paper (needs ``\\usepackage{booktabs}``): metrics by their
        display names with units and direction; each column at one precision (about four
        significant digits of its typical value), 95% intervals as ± half-widths at the same
        precision with ``--ci``; the best quality value bold and the second underlined within
        each dataset (never a cost column); Bjøntegaard columns once per family (on its
        best-ranked row); a column no run has a value for is dropped and named in a note; a
        rule between datasets (and between protocols of one dataset, when mismatched records
        were allowed)."""
        from vtbench.metrics import metric_label

        rows = _bd_once_per_family(self.rows, self.columns)
        empty = [c for c in self.columns if all(not isinstance(row.get(c.key), (int, float)) for row in rows)]
        columns = [c for c in self.columns if c not in empty]
        marks = self.places(rows)
        decimals = {c.key: _decimals([row.get(c.key) for row in rows]) for c in columns}
        arrows = {True: r" $\uparrow$", False: r" $\downarrow$", None: ""}
        header = [self.headings[0].capitalize(), *[_latex(metric_label(c.key, c.unit, self.task, c.extractor)) + arrows[c.higher_is_better]
                                                   for c in columns]]  # fmt: skip
        lines = [r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
        dataset = None
        for i, row in enumerate(rows):
            if _group(row) != dataset:
                if dataset is not None:
                    lines.append(r"\midrule")
                dataset = _group(row)
                lines.append(rf"\multicolumn{{{len(columns) + 1}}}{{l}}{{\textit{{{_latex(dataset)}}}}} \\")
            cells = [_latex(row["tokenizer"])]
            for column in columns:
                value = row.get(column.key)
                places = decimals[column.key]
                text = "" if value is None and column.kind == "bd" and row.get("_bd_repeat") else _latex(format_fixed(value, places))
                interval = row.get(f"{column.key}_ci95")
                if self.show_intervals and interval and column.kind != "cost" and None not in interval:
                    text += rf" $\pm$ {_latex(format_fixed((interval[1] - interval[0]) / 2, places))}"
                place = marks.get((i, column.key))
                cells.append(rf"\textbf{{{text}}}" if place == 1 else (rf"\underline{{{text}}}" if place == 2 else text))
            lines.append(" & ".join(cells) + r" \\")
        lines.append(r"\bottomrule")
        if empty:
            names = ", ".join(_latex(metric_label(c.key)) for c in empty)
            lines.append(rf"\multicolumn{{{len(columns) + 1}}}{{l}}{{\footnotesize No run has a value of {names}: not shown.}} \\")
        lines.append(r"\end{tabular}")
        return "\n".join(lines) + "\n"

    def _cell(self, row: dict[str, Any], column: Column) -> str:
        text = format_value(row.get(column.key))
        interval = row.get(f"{column.key}_ci95")
        if self.show_intervals and interval and column.kind != "cost":
            text += f" [{format_value(interval[0])}, {format_value(interval[1])}]"
        return text

    def _header_and_cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["rank", *self.headings, *[c.header for c in self.columns], "images", "failed"]
        cells = [
            [
                str(row["rank"]),
                row["tokenizer"],
                row["dataset"],
                *[self._cell(row, c) for c in self.columns],
                str(row["images"]),
                str(row["failed"]),
            ]
            for row in self.rows
        ]
        return header, cells

    def to_markdown(self) -> str:
        """Best value of each metric bold, second underlined, within each dataset."""
        header, cells = self._header_and_cells()
        cells = [[html.escape(cell, quote=False) for cell in row] for row in cells]  # labels are data: the table is rendered as HTML
        marks, first = self.places(), 3  # metric cells start after rank, tokenizer, dataset
        for (i, key), place in marks.items():
            j = first + next(n for n, c in enumerate(self.columns) if c.key == key)
            cells[i][j] = f"**{cells[i][j]}**" if place == 1 else f"<u>{cells[i][j]}</u>"
        aligns = ["---:", ":---", ":---", *["---:"] * len(self.columns), "---:", "---:"]
        header = [html.escape(name, quote=False).replace("|", "\\|") for name in header]
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(aligns) + " |"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        quality = [c for c in self.columns if c.kind != "cost"]
        intervals = [f"{c.shown}_ci95_{end}" for c in quality for end in ("low", "high")]
        writer.writerow(["rank", "tokenizer", "dataset", *[c.shown for c in self.columns], *intervals, "images", "failed", "record"])
        for row in self.rows:
            bounds = [_csv_value((row.get(f"{c.key}_ci95") or [None, None])[i]) for c in quality for i in (0, 1)]
            values = [_csv_value(row.get(c.key)) for c in self.columns]
            cells = [row["rank"], row["tokenizer"], row["dataset"], *values, *bounds, row["images"], row["failed"], row["record"]]
            writer.writerow([csv_safe(cell) for cell in cells])
        return buffer.getvalue()

    def to_json(self) -> str:
        return to_json(
            {
                "rank_by": self.rank_by,
                "columns": [
                    {"key": c.key, "higher_is_better": c.higher_is_better, "kind": c.kind, "unit": c.unit, "extractor": c.extractor}
                    for c in self.columns
                ],  # fmt: skip
                "rows": self.rows,
            }
        )

    def to_html(self) -> str:
        header, cells = self._header_and_cells()
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
        return (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>vtbench leaderboard</title>\n'
            "<style>table{border-collapse:collapse;font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px 8px}"
            "td{text-align:right}td:nth-child(2),td:nth-child(3){text-align:left}</style></head><body>\n"
            f"<p>Ranked by {html.escape(self.rank_by)} within each dataset.</p>\n"
            f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></body></html>\n"
        )


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip


def _latex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(character, character) for character in str(text))


def _decimals(values: list[Any]) -> int:
    """Decimal places that give about four significant digits to a column's typical (median
    absolute, non-zero) value: 2 for PSNR in dB, 4 for SSIM, 0 for token counts."""
    magnitudes = sorted(abs(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v) and v != 0)
    if not magnitudes:
        return 0
    return max(0, min(4, 3 - math.floor(math.log10(magnitudes[len(magnitudes) // 2]))))


def format_fixed(value: float | None, decimals: int) -> str:
    """``value`` at ``decimals`` places (thousands separated at 0 places); ``n/a`` for none."""
    if value is None or not math.isfinite(value):
        return format_value(value)
    return f"{value:,.0f}" if decimals == 0 else f"{value:.{decimals}f}"


def _bd_once_per_family(rows: list[dict[str, Any]], columns: list[Column]) -> list[dict[str, Any]]:
    """Copies of ``rows`` with the Bjøntegaard values kept on each family's first row of each
    block only (they describe the family's curve, not the run); the others marked as repeats."""
    bd = [c.key for c in columns if c.kind == "bd"]
    if not bd:
        return rows
    seen, out = set(), []
    for row in rows:
        key = (_group(row), row.get("family"))
        if key in seen:
            row = {**row, **dict.fromkeys(bd), "_bd_repeat": True}
        seen.add(key)
        out.append(row)
    return out


def format_value(value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _csv_value(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def check_protocols(records: list[RunRecord]) -> None:
    """Refuse to rank, within one dataset, records whose numbers of a metric are not comparable
    (:meth:`~vtbench.schema.RunRecord.comparability`: the data side, preprocessing and the
    metric's own settings; for generation runs the reference, never the samples)."""
    by_dataset: dict[str, list[RunRecord]] = {}
    for record in records:
        by_dataset.setdefault(record.dataset_name, []).append(record)
    for dataset, group in by_dataset.items():
        for metric in sorted({name for record in group for name in record.metrics}):
            having = [record for record in group if metric in record.metrics]
            first = having[0].comparability(metric)
            for other in having[1:]:
                key = other.comparability(metric)
                if key != first:
                    differing = sorted(k for k in set(key) | set(first) if key.get(k) != first.get(k))
                    raise VtbenchError(
                        f"{having[0].run_name} and {other.run_name} (dataset {dataset}) computed {metric} under different "
                        f"settings ({differing[0]}: {first.get(differing[0])} vs {key.get(differing[0])}); their numbers are not "
                        "comparable. Pass --allow-protocol-mismatch to rank them anyway."
                    )


def build_leaderboard(records: list[RunRecord], rank_by: str | None = None, allow_protocol_mismatch: bool = False,
                      bd_baseline: str | None = None, bd_metric: str | None = None) -> Leaderboard:  # fmt: skip
    """Build a ranked table from run records (see :func:`vtbench.schema.find_records`). With
    ``bd_baseline`` (a tokenizer family such as ``jpeg``), each row also gets its family's
    Bjøntegaard deltas against that family on the same dataset: ``bd-rate`` (%, of
    ``bd_metric``, default the ranking metric, against bits per pixel) and ``bd-METRIC``."""
    if not records:
        raise VtbenchError("no run records to rank")
    if not allow_protocol_mismatch:
        check_protocols(records)
    columns: dict[str, Column] = {}
    for record in records:
        for key, metric in record.metrics.items():
            columns.setdefault(key, Column(key, metric.higher_is_better, metric.kind, metric.unit, metric.extractor))
    ordered = [c for c in columns.values() if c.kind != "cost"] + [c for c in columns.values() if c.kind == "cost"]
    if rank_by is None:
        rank_by = next((c.key for c in ordered if c.kind != "cost"), ordered[0].key)
    if rank_by not in columns:
        raise VtbenchError(f"cannot rank by {rank_by!r}: the records have {', '.join(columns)}")
    higher = columns[rank_by].higher_is_better is not False
    bd_values: dict[tuple[str, str], dict[str, Any]] = {}
    if bd_baseline:
        from vtbench.analysis import bd_table, curve_name, records_frame

        bd_metric = bd_metric or rank_by
        if bd_metric not in columns or columns[bd_metric].kind == "cost":
            raise VtbenchError(f"--bd-metric {bd_metric!r}: not a quality metric of these records ({', '.join(columns)})")
        table = bd_table(records_frame(records), bd_baseline, bd_metric)

        bd_values = {(r.curve, r.dataset): {"bd-rate": r.bd_rate, f"bd-{bd_metric}": r.bd_quality} for r in table.itertuples()}
        bd_columns = [Column("bd-rate", False, "bd", "%"), Column(f"bd-{bd_metric}", columns[bd_metric].higher_is_better, "bd",
                                                                  columns[bd_metric].unit)]  # fmt: skip
        ordered = [c for c in ordered if c.kind != "cost"] + bd_columns + [c for c in ordered if c.kind == "cost"]

    groups = _protocol_groups(records)
    rows = []
    for record in records:
        row: dict[str, Any] = {
            "tokenizer": record.subject_name,
            "dataset": record.dataset_name,
            "group": groups[id(record)],
            "images": record.samples.evaluated,
            "failed": record.samples.failed,
            "record": str(record.path) if record.path is not None else record.run_name,
        }
        for key in columns:
            metric = record.metrics.get(key)
            row[key] = parse_float(metric.value) if metric else None
            row[f"{key}_ci95"] = [parse_float(v) for v in metric.ci95] if metric and metric.ci95 else None
        if bd_baseline:
            row["family"] = curve_name(record)
            row.update(bd_values.get((row["family"], row["dataset"]), dict.fromkeys(("bd-rate", f"bd-{bd_metric}"))))
        rows.append(row)

    def sort_key(row: dict[str, Any]) -> tuple[str, int, float]:
        value = row[rank_by]
        if value is None or math.isnan(value):
            return (row["group"], 1, 0.0)
        return (row["group"], 0, -value if higher else value)

    rows.sort(key=lambda r: (*sort_key(r), r["tokenizer"]))
    rank, previous = 0, None
    for row in rows:
        rank = 1 if row["group"] != previous else rank + 1
        previous = row["group"]
        row["rank"] = rank
    tasks = {record.task for record in records}
    return Leaderboard(rank_by=rank_by, columns=ordered, rows=rows, task=tasks.pop() if len(tasks) == 1 else "mixed")


def _group(row: dict[str, Any]) -> str:
    return row.get("group", row["dataset"])


def _protocol_groups(records: list[RunRecord]) -> dict[int, str]:
    """id(record) -> the block its row is ranked in: the dataset, or, where records of one
    dataset were made under different protocols (``--allow-protocol-mismatch``), the dataset
    with the protocol that tells them apart (resolution, mode, data)."""
    import json

    keys = {id(r): json.dumps(r.comparability(), sort_keys=True, default=str) for r in records}
    per_dataset: dict[str, set[str]] = {}
    for record in records:
        per_dataset.setdefault(record.dataset_name, set()).add(keys[id(record)])
    groups = {}
    for record in records:
        name = record.dataset_name
        if len(per_dataset[name]) == 1:
            groups[id(record)] = name
            continue
        key = record.comparability()
        preprocessing = key.get("preprocessing") or {}
        data = str(key.get("dataset_manifest") or key.get("reference") or "")[:8]
        groups[id(record)] = f"{name} ({preprocessing.get('resolution') or 'native'}px {preprocessing.get('mode', '')}, data {data})"
    return groups


def print_rich_table(board: Leaderboard, title: str | None = None) -> None:
    """Print the leaderboard as a rich table, never squeezing numbers into ellipses."""

    header, cells = board._header_and_cells()
    print_whole(to_rich_table(board, title), header, cells)


def print_whole(table: Any, header: list[str], cells: list[list[str]]) -> None:
    """Print a rich ``table`` on a console at least as wide as its ``header`` and ``cells``
    need, so no value is squeezed into an ellipsis."""
    from rich.console import Console

    needed = sum(max(len(h), *(len(row[i]) for row in cells)) + 3 for i, h in enumerate(header)) + 1
    console = Console()
    if console.width < needed:
        console = Console(width=needed)
    console.print(table)


def to_rich_table(board: Leaderboard, title: str | None = None) -> Any:
    """The leaderboard as a ``rich.table.Table`` for the terminal."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title or f"vtbench leaderboard (ranked by {board.rank_by})"))
    header, cells = board._header_and_cells()
    for i, name in enumerate(header):
        table.add_column(escape(name), justify="left" if i in (1, 2) else "right", no_wrap=i in (1, 2))
    for row in cells:
        table.add_row(*(escape(cell) for cell in row))
    return table
