"""The HTML report, opened in a real headless browser (Debian's chromium): it loads with no
console error, sorting works, every figure renders; a screenshot is kept."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make system-deps)")


def _browser(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",  # type: ignore[list-item]
                           "--virtual-time-budget=5000", *args], capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def report(quickstart: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a fresh quickstart run (not the committed one, so engine drift shows)."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    run_cli("report", quickstart[0], "--out", out)
    return out


def test_the_report_is_one_self_contained_file(report: Path, quickstart: tuple[Path, str]) -> None:
    text = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?https?:""", text) and "<link" not in text  # nothing fetched from the network
    assert text.count("<svg") >= 2 and 'id="leaderboard"' in text
    for run in ("identity__samples", "jpeg-q50__samples", "webp-q25__samples"):
        assert run in text
    warnings = text[text.index("<h2>Warnings</h2>") : text.index("<h2>Bjøntegaard")]
    assert warnings.count("fewer than 50 images") == 1 and "(10 runs)</summary>" in warnings  # once, the runs listed inside
    assert warnings.count("<details") == len(set(re.findall(r"<summary>(.*?)</summary>", warnings)))  # no warning repeated
    # the Bjøntegaard table: WebP against JPEG from the quickstart's four qualities each
    import vtbench
    from vtbench.analysis import rate_quality_curves

    curves = rate_quality_curves(vtbench.load_records(quickstart[0]))
    jpeg, webp = curves[("jpeg", "samples")], curves[("webp", "samples")]
    expected = vtbench.bd_rate(jpeg["bits_per_pixel"], jpeg["psnr"], webp["bits_per_pixel"], webp["psnr"])
    bd = text[text.index('id="bd"') : text.index("</table>", text.index('id="bd"'))]
    assert f"<td>{expected:.4g}</td>" in bd and expected < 0
    # the gallery: the 2 images worst on mean PSNR over the 9 lossy runs, each once: its original and every run's
    # reconstruction, whole and zoomed (the lossless identity left out)
    gallery = text[text.index("Worst images by psnr") :]
    assert gallery.count('<img src="data:image/png;base64,') == 2 * 10 and gallery.count('class="zoom"') == 2 * 10
    from vtbench.analysis import worst_images

    hardest = list(worst_images(quickstart[0], "psnr", 2)["id"])
    assert [gallery.count(f"<h4>{image_id}</h4>") for image_id in hardest] == [1, 1] and gallery.count("<h4>") == 2


def test_the_report_refuses_mixed_protocols_unless_asked(quickstart: tuple[Path, str], tmp_path: Path) -> None:
    run_cli("run", "-t", "jpeg-q50", "-d", "samples", "--limit", "2", "--resolution", "32", "-m", "psnr", "--out", tmp_path / "small")
    error = run_cli("report", quickstart[0], tmp_path / "small", "--out", tmp_path / "r.html", check=2).stderr
    assert "different settings (" in error and "--allow-protocol-mismatch" in error
    run_cli("report", quickstart[0], tmp_path / "small", "--allow-protocol-mismatch", "--gallery-k", "0",
            "--out", tmp_path / "r.html")  # fmt: skip
    text = (tmp_path / "r.html").read_text()
    assert "different preprocessing settings" in text and "No gallery." in text
    assert "--gallery-k must be 0" in run_cli("report", quickstart[0], "--gallery-k", "-1", "--out", tmp_path / "r.html", check=2).stderr
    error = run_cli("report", quickstart[0], "--gallery-metric", "lpips-vgg", "--out", tmp_path / "r.html", check=2).stderr
    assert "--gallery-metric 'lpips-vgg': no record has it per image" in error


@needs_chromium
def test_the_report_loads_sorts_and_renders_in_a_headless_browser(report: Path, tmp_path: Path) -> None:
    result = _browser("--dump-dom", f"{report.as_uri()}#sort=-bpp")
    errors = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not errors, errors
    dom = result.stdout
    assert 'data-ready="true"' in dom and 'data-images-ok="true"' in dom and 'data-sorted-by="-bpp"' in dom
    table = dom[dom.index('id="leaderboard"') : dom.index("</table>", dom.index('id="leaderboard"'))]
    header = re.findall(r'<th data-key="([^"]+)"', table)
    column = header.index("bpp")
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.DOTALL)[1:]
    bpp = [float(re.findall(r'data-value="([^"]*)"', row)[column]) for row in rows]
    assert len(bpp) == 10 and bpp == sorted(bpp, reverse=True)  # sorted by the page's script, descending
    assert dom.count('class="zoom"') == 2 * 10  # the gallery's crops (each of 2 images: its original and 9 runs) are in the page
    assert re.search(r'<th data-key="bpp"[^>]*class="sorted-desc"', table)  # the sorted column is marked
    by_name = _browser("--dump-dom", f"{report.as_uri()}#sort=TOKENIZER").stdout  # a text column, the key in any case
    table = by_name[by_name.index('id="leaderboard"') : by_name.index("</table>", by_name.index('id="leaderboard"'))]
    names = re.findall(r'<td class="name">([^<]*)</td><td class="name">', table)
    assert len(names) == 10 and names == sorted(names) and 'data-sorted-by="tokenizer"' in by_name
    shot = tmp_path / "report.png"
    _browser(f"--screenshot={shot}", "--window-size=1280,1600", report.as_uri())
    with Image.open(shot) as image:
        assert image.size == (1280, 1600) and len(set(image.convert("L").getdata())) > 16  # a rendered page, not a blank one
    if os.environ.get("VTBENCH_TEST_ARTIFACTS"):  # kept for a person to look at
        shutil.copy(shot, Path(os.environ["VTBENCH_TEST_ARTIFACTS"]) / "report.png")
