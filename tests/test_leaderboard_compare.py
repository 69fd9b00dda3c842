"""Leaderboards from records in every format, and the compare gate's exit codes."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import vtbench
from conftest import run_cli
from vtbench.images import Preprocessing


@pytest.fixture(scope="module")
def records_dir(tmp_path_factory: pytest.TempPathFactory, photo_folder: Path) -> Path:
    out = tmp_path_factory.mktemp("records")
    for name in ("jpeg-q25", "jpeg-q90", "webp-q50", "resample-x4"):
        config = vtbench.RunConfig(name, str(photo_folder), metrics=["psnr", "ssim"], preprocessing=Preprocessing(64), num_workers=0)
        vtbench.evaluate(config, out)
    return out


def test_leaderboard_ranks_by_the_chosen_metric(records_dir: Path) -> None:
    board = vtbench.build_leaderboard(vtbench.find_records(records_dir), rank_by="psnr")
    psnrs = [row["psnr"] for row in board.rows]
    assert psnrs == sorted(psnrs, reverse=True)
    assert board.rows[0]["tokenizer"] == "jpeg-q90" and board.rows[-1]["tokenizer"] == "resample-x4"
    assert [row["rank"] for row in board.rows] == [1, 2, 3, 4]
    by_bpp = vtbench.build_leaderboard(vtbench.find_records(records_dir), rank_by="bpp")
    bpps = [row["bpp"] for row in by_bpp.rows]
    assert bpps == sorted(bpps)  # lower is better for cost


def test_markdown_has_directions_and_cost_columns(records_dir: Path) -> None:
    text = run_cli("leaderboard", records_dir, "--format", "md").stdout
    header = text.splitlines()[0]
    for column in ("psnr ↑", "ssim ↑", "bpp ↓", "tokens ↓", "tokenizer", "images"):
        assert column in header
    assert header.index("ssim ↑") < header.index("bpp ↓")
    assert len(text.splitlines()) == 2 + 4


def test_csv_json_and_html_carry_the_same_numbers(records_dir: Path, tmp_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(run_cli("leaderboard", records_dir, "-f", "csv").stdout)))
    board = json.loads(run_cli("leaderboard", records_dir, "-f", "json").stdout)
    record = json.loads((records_dir / f"jpeg-q90__{Path(rows[0]['record']).name.split('__')[1]}").read_text())
    assert float(rows[0]["psnr"]) == record["metrics"]["psnr"]["value"] == board["rows"][0]["psnr"]
    assert board["rank_by"] == "psnr" and {c["key"] for c in board["columns"]} >= {"psnr", "ssim", "bpp", "tokens"}
    run_cli("leaderboard", records_dir, "-f", "html", "--out", tmp_path / "board.html")
    page = (tmp_path / "board.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "jpeg-q90" in page and "psnr ↑" in page


def test_unknown_rank_metric_is_an_error(records_dir: Path) -> None:
    result = run_cli("leaderboard", records_dir, "--rank-by", "fid", check=2)
    assert "cannot rank by 'fid'" in result.stderr


def _record(records_dir: Path, tokenizer: str) -> Path:
    return next(records_dir.glob(f"{tokenizer}__*.json"))


def test_compare_passes_on_identical_records(records_dir: Path) -> None:
    record = _record(records_dir, "jpeg-q90")
    result = run_cli("compare", record, record)
    assert "no regression" in result.stdout


def test_compare_fails_on_a_regression_and_tolerance_can_allow_it(records_dir: Path) -> None:
    good, bad = _record(records_dir, "jpeg-q90"), _record(records_dir, "jpeg-q25")
    result = run_cli("compare", good, bad, "--tolerance", "bpp=100", "--tolerance", "tokens=100%", check=1)
    assert "regressed" in result.stdout and "REGRESSION" in result.stdout
    run_cli(
        "compare", good, bad, "--tolerance", "psnr=100", "--tolerance", "ssim=1", "--tolerance", "bpp=100", "--tolerance", "tokens=100%"
    )
    # the other direction improves quality but costs more bits: bpp and tokens regress
    result = run_cli("compare", bad, good, check=1)
    assert "improved" in result.stdout


def test_compare_and_leaderboard_have_json_and_quiet_modes(records_dir: Path) -> None:
    good, bad = _record(records_dir, "jpeg-q90"), _record(records_dir, "jpeg-q25")
    result = run_cli("compare", good, bad, "--json", check=1)
    report = json.loads(result.stdout)
    assert report["regressed"] is True and report["candidate"] == str(bad)
    psnr = next(d for d in report["diffs"] if d["metric"] == "psnr")
    assert psnr["status"] == "regressed" and psnr["delta"] == pytest.approx(psnr["candidate"] - psnr["baseline"])
    assert run_cli("compare", good, bad, "--quiet", check=1).stdout == ""
    assert run_cli("compare", good, good, "--quiet").stdout == ""
    board = json.loads(run_cli("leaderboard", records_dir, "--json").stdout)
    assert board == json.loads(run_cli("leaderboard", records_dir, "--format", "json").stdout)


def test_compare_flags_a_missing_metric_and_a_protocol_mismatch(records_dir: Path, tmp_path: Path) -> None:
    from vtbench.schema import load_record

    base = _record(records_dir, "jpeg-q90")
    record = load_record(base)
    del record.metrics["ssim"]
    candidate = record.write(tmp_path / "cand")
    result = run_cli("compare", base, candidate, check=1)
    assert "missing" in result.stdout
    record = load_record(base)
    record.protocol.preprocessing["resolution"] = 128
    other = record.write(tmp_path / "other")
    result = run_cli("compare", base, other, check=2)
    assert "bpp was computed under different settings (preprocessing:" in result.stderr  # the first metric by name
    run_cli("compare", base, other, "--allow-protocol-mismatch")


def test_compare_keys_each_metric_on_what_it_depends_on(records_dir: Path, tmp_path: Path) -> None:
    """PSNR is compared between a PSNR-only record and a PSNR+FD record of the same data;
    an FD made with other extractor weights is refused, naming the key."""
    import copy

    from vtbench.schema import Extractor, MetricEntry, WeightsFile, load_record

    base = load_record(_record(records_dir, "jpeg-q90"))
    base.run_name = "r"
    weights = WeightsFile("efficientnet-lite0", "efficientnet-lite0-57934424.pth", "aa")
    with_fd = copy.deepcopy(base)
    with_fd.metrics["fd-efficientnet-lite0"] = MetricEntry(12.5, n=6, higher_is_better=False, aggregation="dataset", kind="distribution",
                                                          extractor="efficientnet-lite0", weights=[weights])  # fmt: skip
    with_fd.protocol.feature_extractors = [Extractor("efficientnet-lite0", "2", [weights])]
    base.write(tmp_path / "base")
    with_fd.write(tmp_path / "fd")
    assert "no regression" in run_cli("compare", tmp_path / "base" / "r.json", tmp_path / "fd" / "r.json").stdout
    other = copy.deepcopy(with_fd)
    other.metrics["fd-efficientnet-lite0"].weights = [WeightsFile("efficientnet-lite0", "efficientnet-lite0-57934424.pth", "bb")]
    other.write(tmp_path / "other")
    result = run_cli("compare", tmp_path / "fd" / "r.json", tmp_path / "other" / "r.json", check=2)
    assert "fd-efficientnet-lite0 was computed under different settings (weights: ['aa'] vs ['bb'])" in result.stderr


def test_compare_has_a_noise_floor_and_refuses_unknown_tolerance_names(records_dir: Path, tmp_path: Path) -> None:
    from vtbench.schema import load_record

    base = load_record(_record(records_dir, "jpeg-q90"))
    value = base.value("psnr")
    base_path = base.write(tmp_path / "base")
    base.metrics["psnr"].value = value * (1 - 1e-13)  # rounding, not a regression
    result = run_cli("compare", base_path, base.write(tmp_path / "noisy"))
    assert "floor" in result.stdout and "no regression" in result.stdout
    base.metrics["psnr"].value = value - 0.01
    worse = base.write(tmp_path / "worse")
    run_cli("compare", base_path, worse, check=1)
    result = run_cli("compare", base_path, worse, "--tolerance", "pnsr=0.1", check=2)
    assert "no compared record has a metric 'pnsr'. Did you mean: psnr?" in result.stderr


def test_compare_folders_matches_runs_by_name(records_dir: Path, tmp_path: Path) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(records_dir, candidate)
    run_cli("compare", records_dir, candidate)
    next(candidate.glob("webp-q50__*.json")).unlink()
    result = run_cli("compare", records_dir, candidate, check=1)
    assert "missing" in result.stdout


def test_bad_tolerance_is_a_usage_error(records_dir: Path) -> None:
    record = _record(records_dir, "jpeg-q90")
    result = run_cli("compare", record, record, "--tolerance", "psnr", check=2)
    assert "METRIC=VALUE" in result.stderr


def test_a_file_that_is_not_a_record_is_named(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"hello": 1}')
    result = run_cli("compare", tmp_path / "x.json", tmp_path / "x.json", check=2)
    assert "x.json" in result.stderr and "not a vtbench run record" in result.stderr


def test_records_carry_bootstrap_intervals_and_the_table_can_show_them(records_dir: Path) -> None:
    record = json.loads(_record(records_dir, "jpeg-q25").read_text())
    low, high = record["metrics"]["psnr"]["ci95"]
    with open(next(records_dir.glob("jpeg-q25__*.images.csv")), newline="") as handle:
        values = np.array([float(r["psnr"]) for r in csv.DictReader(handle)])
    assert low < values.mean() < high
    normal_half_width = 1.96 * values.std(ddof=1) / np.sqrt(len(values))  # the bootstrap agrees with the CLT roughly
    assert 0.6 < (high - low) / 2 / normal_half_width < 1.4
    text = run_cli("leaderboard", records_dir, "-f", "md", "--ci").stdout
    assert f"[{low:.4g}, {high:.4g}]" in text
    rows = list(csv.DictReader(io.StringIO(run_cli("leaderboard", records_dir, "-f", "csv").stdout)))
    assert {"psnr_ci95_low", "psnr_ci95_high", "ssim_ci95_low"} <= set(rows[0])


def test_leaderboard_refuses_records_made_under_different_protocols(records_dir: Path, photo_folder: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(records_dir, mixed)
    config = vtbench.RunConfig("jpeg-q50", str(photo_folder), metrics=["psnr"], preprocessing=Preprocessing(32), num_workers=0)
    vtbench.evaluate(config, mixed)
    result = run_cli("leaderboard", mixed, check=2)
    assert "under different settings (preprocessing" in result.stderr and "--allow-protocol-mismatch" in result.stderr
    run_cli("leaderboard", mixed, "--allow-protocol-mismatch")
    # allowed, they are ranked and marked in separate blocks, one per protocol, never against each other
    latex = run_cli("leaderboard", mixed, "--allow-protocol-mismatch", "-f", "latex").stdout
    blocks = re.findall(r"\\multicolumn\{\d+\}\{l\}\{\\textit\{([^}]*)\}\}", latex)
    assert len(blocks) == 2 and any("32px" in b for b in blocks) and any("64px" in b for b in blocks)
    board = vtbench.build_leaderboard(vtbench.find_records(mixed), allow_protocol_mismatch=True)
    alone = next(i for i, row in enumerate(board.rows) if "32px" in row["group"])
    assert board.rows[alone]["rank"] == 1 and board.places().get((alone, "psnr")) is None  # nothing to beat in its block


def test_paper_tables_mark_the_best_and_second_best_by_direction(records_dir: Path) -> None:
    board = vtbench.build_leaderboard(vtbench.find_records(records_dir), rank_by="psnr")
    psnr = {row["tokenizer"]: row["psnr"] for row in board.rows}
    bpp = {row["tokenizer"]: row["bpp"] for row in board.rows}
    best, second = sorted(psnr, key=psnr.get, reverse=True)[:2]
    cheapest = min(bpp, key=bpp.get)
    latex = run_cli("leaderboard", records_dir, "--format", "latex", "--ci").stdout
    assert latex.startswith("\\begin{tabular}") and "\\toprule" in latex and "\\bottomrule" in latex
    assert "PSNR (dB) $\\uparrow$" in latex and "Rate (bpp) $\\downarrow$" in latex  # display names and units, not ids
    lines = {line.split(" & ")[0]: line for line in latex.splitlines() if " & " in line}
    interval = dict(zip(psnr, [row["psnr_ci95"] for row in board.rows], strict=True))
    half = (interval[best][1] - interval[best][0]) / 2
    assert f"\\textbf{{{psnr[best]:.2f} $\\pm$ {half:.2f}}}" in lines[best]  # the interval at the value's precision
    assert "\\underline{" + f"{psnr[second]:.2f}" + " $\\pm$" in lines[second]
    assert f"{bpp[cheapest]:.3f}" in lines[cheapest] and "textbf" not in lines[cheapest].split(" & ")[-2]  # a cost is never "best"
    markdown = run_cli("leaderboard", records_dir, "--format", "md").stdout
    assert f"**{psnr[best]:.4g}**" in markdown and f"<u>{psnr[second]:.4g}</u>" in markdown
    from vtbench.leaderboard import _latex

    assert _latex("jpeg_q50 & 5% {x}") == "jpeg\\_q50 \\& 5\\% \\{x\\}"


def test_paired_tests_match_scipy_and_exact_enumeration() -> None:
    import itertools

    from scipy import stats

    from vtbench.compare import paired_test

    d = np.array([0.3, -0.1, 0.4, 0.25, -0.05, 0.2, 0.35, 0.1, -0.2, 0.15])
    result = paired_test(d, alpha=0.05)
    # Wilcoxon: the exact null distribution of W+ by enumerating every sign pattern of the ranks
    ranks = stats.rankdata(np.abs(d))
    w_plus = ranks[d > 0].sum()
    null = np.array([sum(r for r, s in zip(ranks, signs, strict=True) if s) for signs in itertools.product((0, 1), repeat=len(d))])
    exact = min(1.0, 2 * min(np.mean(null >= w_plus), np.mean(null <= w_plus)))
    assert result.p_wilcoxon == pytest.approx(exact, abs=1e-9)
    # bootstrap interval of the mean against scipy's percentile bootstrap (different draws, same estimator)
    reference = stats.bootstrap((d,), np.mean, confidence_level=0.95, method="percentile", n_resamples=20_000, random_state=1)
    assert result.interval[0] == pytest.approx(reference.confidence_interval.low, abs=0.02)
    assert result.interval[1] == pytest.approx(reference.confidence_interval.high, abs=0.02)
    assert result.mean_difference == pytest.approx(d.mean()) and result.pairs == 10
    assert result.p_bootstrap < 0.05 and result.interval[0] > 0
    assert paired_test(d) == paired_test(d)  # fixed seed: a CI gate does not flap
    assert paired_test(np.zeros(5)).p_value == 1.0
    assert paired_test(d, decided_by="wilcoxon").p_value == result.p_wilcoxon


def test_compare_with_significance_tells_a_real_regression_from_noise(records_dir: Path, tmp_path: Path) -> None:
    good, bad = _record(records_dir, "jpeg-q90"), _record(records_dir, "jpeg-q25")
    report = json.loads(run_cli("compare", good, bad, "--require-significance", "--json", check=1).stdout)
    psnr = next(d for d in report["diffs"] if d["metric"] == "psnr")
    assert psnr["status"] == "regressed" and psnr["p_value"] < 0.05 and psnr["test"]["pairs"] >= 4
    assert psnr["test"]["interval"][1] < 0 and psnr["test"]["p_wilcoxon"] < 0.05
    # a candidate whose per-image PSNR moves up and down around the baseline, slightly lower on average
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    from vtbench.schema import images_csv_text, load_record

    record = load_record(good)
    rows = record.image_rows()
    for i, row in enumerate(rows):
        row.values["psnr"] += 0.5 if i % 2 else -0.6
    metrics = [name for name in rows[0].values]
    (noisy / record.images_path.name).write_text(images_csv_text(record, metrics, False, rows))
    record.metrics["psnr"].value = float(np.mean([row.values["psnr"] for row in rows]))
    record.write(noisy)
    assert run_cli("compare", good, noisy / good.name, check=1).returncode == 1  # without the test: a regression
    result = run_cli("compare", good, noisy / good.name, "--require-significance", "--alpha", "0.05")
    assert "noise" in result.stdout and "no regression" in result.stdout
    plain = run_cli("compare", good, noisy / good.name, check=1).stdout  # the interval and p are shown either way
    assert "interval of delta" in plain and "p (bootstrap)" in plain
    # without the per-image rows, asking for significance names the missing file
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(noisy / good.name, lonely / good.name)
    error = run_cli("compare", good, lonely / good.name, "--require-significance", check=2).stderr
    assert f"{record.run_name}.images.csv is missing" in error and "--require-significance" in error
