"""Hostile input, faults and foreign files, as a user meets them through the CLI: each is one
clear line and exit 2 (or a refusal naming the file and the problem), never a traceback, and
nothing is counted twice or accepted silently."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_cli, skimage_rgb


@pytest.fixture
def six_photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, name in enumerate(["astronaut", "chelsea", "coffee", "rocket", "camera", "coins"]):
        Image.fromarray(skimage_rgb(name)).resize((48, 48)).save(folder / f"{i}-{name}.png")
    return folder


def _shards(photos: Path, out: Path, count: int = 2) -> Path:
    for k in range(count):
        run_cli("run", "-t", "jpeg-q50", "-d", photos, "-m", "psnr", "--resize-mode", "none", "--workers", "0", "--shard", f"{k}/{count}",
                "--out", out)  # fmt: skip
    return out / f"jpeg-q50__{photos.name}.shards"


def test_merge_refuses_shards_that_are_not_the_slices_of_one_run(six_photos: Path, tmp_path: Path) -> None:
    shards = _shards(six_photos, tmp_path / "copied")
    shutil.rmtree(shards / "shard-1-of-2")
    shutil.copytree(shards / "shard-0-of-2", shards / "shard-1-of-2")  # the same shard twice
    refused = run_cli("merge", tmp_path / "copied", "--out", tmp_path / "m1", check=2).stderr
    assert "shard-1-of-2: holds the state of shard 0 of 2, not of shard 1 of 2" in refused
    assert not (tmp_path / "m1").exists() or not list((tmp_path / "m1").glob("*.json"))

    shards = _shards(six_photos, tmp_path / "truncated")
    rows = shards / "shard-1-of-2" / "rows.csv"
    rows.write_text("".join(rows.read_text().splitlines(keepends=True)[:-1]))  # the last row lost
    refused = run_cli("merge", tmp_path / "truncated", "--out", tmp_path / "m2", check=2).stderr
    assert "shard-1-of-2/rows.csv: 2 rows for the 3 images its state counts" in refused

    renamed = tmp_path / "renamed"
    run_cli("run", "-t", "jpeg-q50", "-d", six_photos, "-m", "psnr", "--resize-mode", "none", "--workers", "0", "--shard", "0/2",
            "--out", renamed)  # fmt: skip
    (six_photos / "0-astronaut.png").rename(six_photos / "9-astronaut.png")  # between the two jobs
    run_cli("run", "-t", "jpeg-q50", "-d", six_photos, "-m", "psnr", "--resize-mode", "none", "--workers", "0", "--shard", "1/2",
            "--out", renamed)  # fmt: skip
    refused = run_cli("merge", renamed, "--out", tmp_path / "m3", check=2).stderr
    assert "the images changed between the shard jobs (shard-1-of-2 saw another file list than shard-0-of-2)" in refused


def test_a_resume_state_of_another_version_is_refused_by_name(six_photos: Path, tmp_path: Path) -> None:
    from vtbench.engine.partial_state import load_state, save_state

    shards = _shards(six_photos, tmp_path / "out")
    state = shards / "shard-0-of-2" / "state.safetensors"
    plain, tensors = load_state(state)
    save_state(state, {**plain, "from_the_future": 1}, tensors)
    refused = run_cli("merge", tmp_path / "out", "--out", tmp_path / "m", check=2).stderr
    assert f"{state}: a state this vtbench does not read (fields from_the_future" in refused and "Traceback" not in refused


def test_statistics_that_are_not_a_covariance_are_refused(tmp_path: Path, inception_weights: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT", str(inception_weights))
    mu = np.zeros(2048)
    cases = {
        "asymmetric": np.triu(np.ones((2048, 2048))) * 0.1 + np.eye(2048),
        "indefinite": np.diag(np.r_[np.ones(2008), -50 * np.ones(40)]),
        "nan": np.where(np.eye(2048) > 0, np.nan, 0.0),
    }
    for name, sigma in cases.items():
        np.savez(tmp_path / f"{name}.npz", mu=mu, sigma=sigma)
    np.savez(tmp_path / "small.npz", mu=np.zeros(7), sigma=np.eye(7))
    samples = tmp_path / "samples.npz"
    np.savez(samples, arr_0=np.zeros((4, 32, 32, 3), dtype=np.uint8))
    expected = {"asymmetric": "not symmetric", "indefinite": "not positive semi-definite", "nan": "not finite",
                "small": "dimension 7; fid needs 2048"}  # fmt: skip
    for name, problem in expected.items():
        refused = run_cli("run", "-g", samples, "--reference", tmp_path / f"{name}.npz", "-m", "fid", "--out", tmp_path / "out", check=2)
        assert f"{tmp_path / f'{name}.npz'}" in refused.stderr and problem in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def test_generator_and_probe_options_out_of_range_are_one_line(tmp_path: Path) -> None:
    args = ["-g", "llamagen-c2i-b-256:per_class=-3", "--reference", "samples", "-m", "fd-efficientnet-lite0"]
    refused = run_cli("run", *args, "--out", tmp_path, check=2).stderr
    assert refused.strip() == "error: generator 'llamagen-c2i-b-256': per_class must be a whole number of at least 1, got -3"
    for limit in ("0", "-1"):
        refused = run_cli("probe", "-t", "resample-x8", "-d", "samples", "--limit", limit, "--out", tmp_path, check=2).stderr
        assert f"setting 'limit' must be at least 1, got {limit}" in refused and "Traceback" not in refused


def test_ctrl_c_while_the_record_is_written_keeps_the_finished_run(
    six_photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vtbench
    from vtbench.engine import loop
    from vtbench.engine.partial import PartialRun

    config = vtbench.RunConfig("jpeg-q50", str(six_photos), metrics=["psnr"], num_workers=0)
    write_record = loop.write_record

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "write_record", interrupted)
    with pytest.raises(KeyboardInterrupt):
        vtbench.evaluate(config, tmp_path)
    state = PartialRun(tmp_path / ".partial" / config.run_name, ["psnr"], False)
    assert state.state_path.is_file() and len(state.read_rows()) == 6  # every image, kept
    monkeypatch.setattr(loop, "write_record", write_record)
    calls = []
    monkeypatch.setattr(loop.Engine, "_stream", lambda self, state: calls.append(state))
    record = vtbench.evaluate(config, tmp_path)  # the finished state is written, nothing scored again
    assert calls == [] and record.samples.evaluated == 6 and not (tmp_path / ".partial").exists()


def test_npz_files_that_are_empty_truncated_or_pickled_are_one_line(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, arr_0=np.zeros((4, 32, 32, 3), dtype=np.uint8))
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "truncated.npz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    np.savez(tmp_path / "objects.npz", arr_0=np.array([{"a": 1}], dtype=object))
    cases = {("-g", "empty.npz"): "an empty file, not an .npz", ("-g", "truncated.npz"): "not a readable .npz",
             ("-g", "objects.npz"): "arr_0 holds Python objects, which vtbench does not unpickle",
             ("--reference", "objects.npz"): "arr_0 holds Python objects"}  # fmt: skip
    for (flag, name), problem in cases.items():
        other = ["--reference", "samples"] if flag == "-g" else ["-g", good]
        refused = run_cli("run", flag, tmp_path / name, *other, "-m", "fd-efficientnet-lite0", "--out", tmp_path / "out", check=2)
        assert f"{tmp_path / name}: {problem}" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr


def test_a_sample_batch_is_read_a_row_at_a_time(tmp_path: Path) -> None:
    from vtbench.npz import NpzRows, npz_rows

    array = np.random.default_rng(0).integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "stored.npz", arr_0=array)
    np.savez_compressed(tmp_path / "compressed.npz", arr_0=array)
    rows = npz_rows(tmp_path / "stored.npz", "arr_0")
    assert isinstance(rows, NpzRows) and len(rows) == 5 and all(np.array_equal(rows[i], array[i]) for i in range(5))
    assert np.array_equal(npz_rows(tmp_path / "compressed.npz", "arr_0"), array)  # compressed: read whole


def test_careless_command_lines_are_one_line_each(tmp_path: Path) -> None:
    cases = {
        ("run", "-t", 'jpeg:label="unterminated', "-d", "samples"): "the value of 'label' is not a YAML value",
        ("run", "-t", "jpeg-q50", "-d", "samples", "--resolution", "200000"): "setting 'resolution' must be at most 8192, got 200000",
        ("run", "-t", "jpeg-q50", "-d", "samples", "--batch-size", "10000000"): "setting 'batch_size' must be at most 65536",
    }  # fmt: skip
    for args, message in cases.items():
        refused = run_cli(*args, "--out", tmp_path / "out", check=2).stderr
        assert message in refused and "Traceback" not in refused and len(refused.strip().splitlines()) == 1, refused
    elsewhere = {("reference-stats", "no-such-set"): "unknown dataset 'no-such-set'",
                 ("leaderboard", REPO / "results" / "quickstart"): "--out /proc/no/such/x: cannot write there"}  # fmt: skip
    for args, message in elsewhere.items():
        refused = run_cli(*args, "--out", "/proc/no/such/x", check=2).stderr
        assert message in refused and "Traceback" not in refused, refused
    # an option named like the registry's own argument is the metric's option, not a clash
    run_cli("run", "-t", "jpeg-q50", "-d", "samples", "--limit", "2", "-m", "fd-efficientnet-lite0:name=x", "--out", tmp_path / "named")


def test_hostile_recipes_are_refused_before_they_are_built(tmp_path: Path) -> None:
    laughs = "".join(f"  {chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    recipes = {
        "laughs.yaml": "tokenizers: [identity]\ndatasets: [samples]\ndescription:\n  a: &a [l, l, l, l, l, l, l, l, l]\n" + laughs,
        "deep.yaml": "tokenizers: " + "[" * 3000 + "]" * 3000 + "\n",
        "include.yaml": "include: [a.yaml, b.yaml]\ntokenizers: [identity]\ndatasets: [samples]\n",
    }
    expected = {"laughs.yaml": "more than 100,000 values once its aliases are expanded", "deep.yaml": "nested more than 32 levels deep",
                "include.yaml": "'include' must be one recipe file's name"}  # fmt: skip
    for name, text in recipes.items():
        (tmp_path / name).write_text(text)
        refused = run_cli("validate", tmp_path / name, check=2).stderr
        assert f"{tmp_path / name}: {expected[name]}" in refused, refused


def test_user_text_is_data_in_every_output(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(skimage_rgb("astronaut")).resize((48, 48)).save(folder / "-1.png")
    Image.fromarray(skimage_rgb("chelsea")).resize((48, 48)).save(folder / "price $5_$10.png")
    out = tmp_path / "out"
    labels = ["jpeg:quality=10,label=q10[/]", "jpeg:quality=90,label=<img src=x onerror=alert(1)>", "jpeg:quality=50,label=x$\\bogus$"]
    run_cli("run", *[a for label in labels for a in ("-t", label)], "-d", folder, "-m", "psnr", "--resize-mode", "none", "--out", out)
    assert "q10[/]" in run_cli("leaderboard", out).stdout  # rich markup is shown, not parsed
    markdown = run_cli("leaderboard", out, "--format", "md").stdout
    assert "&lt;img src=x onerror=alert(1)&gt;" in markdown and "<img" not in markdown
    run_cli("compare", out, out)
    run_cli("report", out, "--out", tmp_path / "report.html")  # mathtext in names and labels drawn as text
    run_cli("plot", "distribution", out, "-m", "psnr", "--out", tmp_path / "plot.png")
    record = next(p for p in out.glob("*.json") if p.name.startswith("q10"))
    run_cli("gallery", record, "-m", "psnr", "-k", "2", "--out", tmp_path / "gallery.png")  # "-1.png" found again after the CSV
    refused = run_cli("plot", "rate-distortion", out, "--rate", "nonsense", "--out", tmp_path / "rd.png", check=2).stderr
    assert "--rate 'nonsense': choose bpp (bits per pixel) or tokens" in refused
    refused = run_cli("plot", "rate-distortion", out, "--out", "/proc/no/such/folder/rd.png", check=2).stderr
    assert "cannot write the figure there" in refused and "Traceback" not in refused


def test_records_from_elsewhere_are_read_through_the_schema(tmp_path: Path) -> None:
    import json

    out = tmp_path / "good"
    run_cli("run", "-t", "jpeg-q50", "-d", "samples", "--limit", "2", "-m", "psnr", "--out", out)
    record = json.loads((out / "jpeg-q50__samples.json").read_text())
    broken = {
        "unit": ({"metrics": {**record["metrics"], "psnr": {**record["metrics"]["psnr"], "value": "31.2 dB"}}},
                 'metrics.psnr.value must be a number or null, got "31.2 dB"'),
        "bare": ({"metrics": {**record["metrics"], "psnr": 31.2}}, "metrics.psnr must be a mapping, got 31.2"),
        "html": ({"samples": {**record["samples"], "evaluated": "<b>5</b>"}}, 'samples.evaluated must be an integer, got "<b>5</b>"'),
    }  # fmt: skip
    for name, (change, message) in broken.items():
        (tmp_path / name).mkdir()
        path = tmp_path / name / "jpeg-q50__samples.json"
        path.write_text(json.dumps({**record, **change}))
        for command in (("leaderboard", tmp_path / name), ("compare", out, tmp_path / name),
                        ("report", tmp_path / name, "--out", tmp_path / f"{name}.html")):  # fmt: skip
            refused = run_cli(*command, check=2).stderr
            assert f"{path}: {message}" in refused and "Traceback" not in refused, refused
    (tmp_path / "no-samples").mkdir()
    (tmp_path / "no-samples" / "r.json").write_text(json.dumps({k: v for k, v in record.items() if k != "samples"}))
    assert "| jpeg-q50" in run_cli("leaderboard", tmp_path / "no-samples", "--format", "md").stdout  # read with its defaults
