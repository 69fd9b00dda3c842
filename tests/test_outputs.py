"""What the tool shows, as its users read it: progress in a CI log, JSON for scripts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from vtbench.progress import LogProgress, duration


def test_a_piped_run_logs_each_run_start_and_finish_with_its_position(tmp_path: Path) -> None:
    result = run_cli("run", "-t", "jpeg-q50", "-t", "webp-q50", "-d", "samples", "-m", "psnr", "--limit", "2", "--resolution", "32",
                     "--out", tmp_path)  # fmt: skip
    lines = result.stderr.splitlines()
    assert lines[0] == "run 1/2 jpeg-q50__samples: started, 2 images"
    assert lines[1].startswith("run 1/2 jpeg-q50__samples: finished 2 images in ")
    assert lines[2] == "run 2/2 webp-q50__samples: started, 2 images" and lines[3].startswith("run 2/2 webp-q50__samples: finished")
    assert "ranked by psnr" in result.stdout  # the table stays on stdout, the log lines on stderr


def test_the_log_says_images_done_rate_and_time_left_every_30_seconds() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = LogProgress(stream, every=30.0, clock=lambda: now[0])
    progress.at_run(3, 10)
    progress.start("big-run", total=1000, done=100)
    for _ in range(9):  # 100 images every 20 s: a line at 40 s and at 80 s, none between
        now[0] += 20
        progress.advance(100)
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "run 3/10 big-run: resuming at 100/1000 images",
        "run 3/10 big-run: 300/1000 images, 5.0 img/s, 2m20s left",
        "run 3/10 big-run: 500/1000 images, 5.0 img/s, 1m40s left",
        "run 3/10 big-run: 700/1000 images, 5.0 img/s, 1m00s left",
        "run 3/10 big-run: 900/1000 images, 5.0 img/s, 20s left",
        "run 3/10 big-run: finished 1000 images in 3m00s (5.0 img/s)",
    ]
    assert duration(7620) == "2h07m"


def test_with_json_every_failure_is_a_json_error_object() -> None:
    for args in (["run", "-t", "jpeg-q50", "-d", "samples", "--limit", "0", "--out", "x"],  # a setting out of range
                 ["run", "-t", "jpeg-q50", "-d", "samples", "--bogus"],  # a usage error (click's)
                 ["leaderboard", "/no/such/folder"], ["show", "no-such-tokenizer"], ["list", "no-such-kind"]):  # fmt: skip
        result = run_cli(*args, "--json", check=2)
        error = json.loads(result.stdout)
        assert error["exit"] == 2 and error["error"] and "\n" not in error["error"], args
        assert "rror" in result.stderr  # the line for people is still on stderr
    assert "no-such-kind" in json.loads(run_cli("list", "no-such-kind", "--json", check=2).stdout)["error"]
    assert "--bogus" in json.loads(run_cli("run", "-t", "jpeg-q50", "-d", "samples", "--bogus", "--json", check=2).stdout)["error"]


def test_compare_json_gives_tolerances_as_numbers() -> None:
    quickstart = REPO / "results" / "quickstart"
    result = run_cli("compare", quickstart / "jpeg-q50__samples.json", quickstart / "jpeg-q75__samples.json", "--json",
                     "--tolerance", "psnr=2%", "--tolerance", "ssim=0.01", check=1)  # fmt: skip
    diffs = {d["metric"]: d for d in json.loads(result.stdout)["diffs"]}
    assert diffs["psnr"]["tolerance_percent"] == 2.0
    assert diffs["psnr"]["tolerance"] == pytest.approx(diffs["psnr"]["baseline"] * 0.02, rel=1e-12)
    assert diffs["ssim"]["tolerance"] == 0.01 and diffs["ssim"]["tolerance_percent"] is None
    assert diffs["bpp"]["tolerance"] == 0.0  # the default: no change allowed beyond rounding


def test_the_paper_table_compiles_and_drops_a_column_no_run_has(tmp_path: Path) -> None:
    """A metric no run could compute (its weights missing, skipped) is no all-n/a column but a
    note; the table compiles with pdflatex and booktabs where TeX is installed
    (``make system-deps``), else its structure is checked."""
    import shutil
    import subprocess

    for tokenizer in ("jpeg-q25", "jpeg-q75"):
        run_cli("run", "-t", tokenizer, "-d", "samples", "-m", "psnr,lpips-alex", "--limit", "2", "--resolution", "32",
                "--skip-unavailable", "--out", tmp_path / "runs")  # fmt: skip
    latex = run_cli("leaderboard", tmp_path / "runs", "-f", "latex", "--ci").stdout
    assert "LPIPS" not in latex.split("\\midrule")[0] and "No run has a value of LPIPS (Alex): not shown." in latex
    assert latex.count("&") == latex.count("\\\\") * 3 - 3 * latex.count("multicolumn")  # 4 columns on every ordinary row
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (make system-deps): the structure was checked, not the compilation")
    document = "\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n" + latex + "\\end{document}\n"
    (tmp_path / "table.tex").write_text(document)
    result = subprocess.run(["pdflatex", "-halt-on-error", "-interaction=nonstopmode", "table.tex"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "table.pdf").read_bytes().startswith(b"%PDF")


def test_two_variants_of_one_tokenizer_are_named_from_their_options_and_ranked_from_two_folders(tmp_path: Path) -> None:
    run_cli("run", "-t", "jpeg:quality=20", "-t", "jpeg:quality=80", "-d", "samples", "--limit", "2", "--resolution", "32",
            "-m", "psnr", "--out", tmp_path / "a")  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "a").glob("*.json")) == ["jpeg-quality=20__samples.json", "jpeg-quality=80__samples.json"]
    run_cli("run", "-t", "webp-q50", "-d", "samples", "--limit", "2", "--resolution", "32", "-m", "psnr", "--out", tmp_path / "b")
    board = json.loads(run_cli("leaderboard", tmp_path / "a", tmp_path / "b", "--json").stdout)  # many folders, as plot and report
    assert sorted(row["tokenizer"] for row in board["rows"]) == ["jpeg-quality=20", "jpeg-quality=80", "webp-q50"]
    worst = json.loads(run_cli("worst", tmp_path / "a", tmp_path / "b", "-m", "psnr", "-k", "1", "--json").stdout)["images"]
    rows = [json.loads(p.read_text()) for p in (tmp_path / "a").glob("*.json")]
    assert worst[0]["runs"] == 3 and worst[0]["worst_run"] == "jpeg-quality=20__samples" and len(rows) == 2
    from vtbench.analysis import load_images

    images = load_images([tmp_path / "a", tmp_path / "b"])
    means = images.groupby("id")["psnr"].mean()
    assert worst[0]["id"] == means.idxmin() and worst[0]["mean"] == means.min()  # the lowest mean PSNR over the three runs


def test_list_says_which_tokenizers_run_here_without_a_download() -> None:
    entries = {e["name"]: e for e in json.loads(run_cli("list", "tokenizers", "--json").stdout)["entries"]}
    assert entries["jpeg-q50"]["weights"] == "none needed" and entries["identity"]["weights"] == "none needed"
    assert entries["llamagen-vq-ds16-c2i"]["weights"] == "download"  # VTBENCH_HOME is empty in the tests
    assert entries["var-vqvae-256"]["weights"] == "download"  # its checkpoint is its class's default, not a preset option
    here = run_cli("list", "tokenizers", "--here").stdout
    assert "jpeg-q50" in here and "llamagen-vq-ds16-c2i" not in here
    assert "No tokenizers match --family nothing-here --here." in run_cli("list", "tokenizers", "--here", "--family", "nothing-here").stdout
    assert "does not apply to metrics" in run_cli("list", "metrics", "--here", check=2).stderr


def test_a_gallery_of_a_metric_that_was_not_computed_says_why(tmp_path: Path) -> None:
    run_cli("run", "-t", "jpeg-q50", "-d", "samples", "-m", "psnr,lpips-alex", "--limit", "2", "--resolution", "32", "--skip-unavailable",
            "--out", tmp_path)  # fmt: skip
    error = run_cli("gallery", tmp_path / "jpeg-q50__samples.json", "-m", "lpips-alex", "--out", tmp_path / "g.png", check=2).stderr
    assert "lpips-alex was not computed (unavailable: alexnet-owt-7be5be79.pth" in error


def test_validate_notes_a_missing_file_the_recipe_skips_instead_of_refusing(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("tokenizers: [jpeg-q50]\ndatasets: [samples]\nmetrics: [psnr, lpips-alex]\nskip_unavailable: true\n")
    result = run_cli("validate", recipe)  # exit 0: what the recipe will do, not a problem
    assert (
        "note: metric lpips-alex will be recorded as not computed (skip_unavailable)" in result.stdout and "OK, 1 run(s)" in result.stdout
    )
    recipe.write_text("tokenizers: [jpeg-q50]\ndatasets: [samples]\nmetrics: [psnr, lpips-alex]\n")
    assert "alexnet-owt-7be5be79.pth" in run_cli("validate", recipe, check=2).stdout + run_cli("validate", recipe, check=2).stderr
