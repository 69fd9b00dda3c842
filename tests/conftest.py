"""Shared fixtures: the CLI as a subprocess, an installed test plugin, real image folders."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

# Tests never touch the network or the user's caches: weights come from files they make.
_ISOLATED = Path(tempfile.mkdtemp(prefix="vtbench-tests-"))
atexit.register(shutil.rmtree, _ISOLATED, ignore_errors=True)  # nothing left behind in the temp folder
os.environ["VTBENCH_OFFLINE"] = "1"
os.environ["VTBENCH_HOME"] = str(_ISOLATED / "vtbench-home")
os.environ["TORCH_HOME"] = str(_ISOLATED / "torch-home")
os.environ["HF_HOME"] = str(_ISOLATED / "hf-home")  # hub models: tests write tiny ones into this cache
os.environ["HF_HUB_CACHE"] = str(_ISOLATED / "hf-home" / "hub")
os.environ["HF_HUB_OFFLINE"] = "1"

ENTRY_POINTS = """\
[vtbench.tokenizers]
test-slow = vtbench_testplugins:SlowIdentity
test-noisy = vtbench_testplugins:NoisyTokenizer
test-nan = vtbench_testplugins:NaNTokenizer
test-wrong-shape = vtbench_testplugins:WrongShapeTokenizer
test-broken = vtbench_testplugins_broken:Tokenizer

[vtbench.metrics]
test-mae = vtbench_testplugins:MeanAbsoluteError
test-fails = vtbench_testplugins:FailingMetric

[vtbench.generators]
test-noise = vtbench_testplugins:NoiseGenerator
"""


@pytest.fixture(scope="session")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which the test plugins are an installed distribution (dist-info
    with entry points on the path, as pip lays it out)."""
    site = tmp_path_factory.mktemp("site")
    for module in ("vtbench_testplugins.py", "vtbench_testplugins_broken.py"):
        shutil.copy(TESTS / "plugins" / module, site / module)
    dist_info = site / "vtbench_testplugins-0.0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: vtbench-testplugins\nVersion: 0.0.1\n")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    (dist_info / "RECORD").write_text("")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


# ``vtbench ARGS`` runs the CLI's own entry point in this process (argv, stdout, stderr and
# the exit code as a user sees them), with the environment a test gives set for the call and
# its PYTHONPATH entries put on sys.path (installed test plugins are found through their
# entry points, then forgotten). That saves the ~3 s an interpreter and torch take to start.
# A test about the process itself (a kill, torchrun, a plugin that breaks on import, a
# package installed by pip) asks for one with ``process=True``; VTBENCH_TEST_SUBPROCESS=1
# runs every call as one.
SUBPROCESS_ONLY = os.environ.get("VTBENCH_TEST_SUBPROCESS") == "1"


def _registries() -> list:
    from vtbench.datasets import DATASETS
    from vtbench.features import EXTRACTORS
    from vtbench.generators import GENERATORS
    from vtbench.metrics import METRICS
    from vtbench.ocr import OCR_ENGINES
    from vtbench.tokenizers import TOKENIZERS

    return [TOKENIZERS, METRICS, GENERATORS, DATASETS, EXTRACTORS, OCR_ENGINES]


@contextlib.contextmanager
def _environment(env: dict[str, str] | None):
    """``env`` (a whole environment, as a subprocess would get it) for the length of a call in
    this process; every variable, sys.path entry, plugin registration and plugin module it
    brought is undone afterwards."""
    if env is None:
        yield
        return
    saved = dict(os.environ)
    added = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
    registries = _registries() if added else []
    snapshots = [(r, dict(r._entries), r._entry_points_loaded, dict(r.plugin_errors)) for r in registries]
    modules = set(sys.modules)
    os.environ.clear()
    os.environ.update(env)
    sys.path[:0] = added
    for registry in registries:
        registry._entry_points_loaded = False
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        for path in added:
            sys.path.remove(path)
        for registry, entries, loaded, errors in snapshots:
            registry._entries, registry._entry_points_loaded, registry.plugin_errors = entries, loaded, errors
        for name in set(sys.modules) - modules:
            if name.startswith(("vtbench_testplugins", "vtbench_example")):
                del sys.modules[name]


def _run_in_process(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import io
    import traceback

    from vtbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_argv = sys.argv
    code = 0
    with _environment(env):
        saved_columns = os.environ.get("COLUMNS")
        sys.argv, os.environ["COLUMNS"] = ["vtbench", *args], "200"
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main()
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                except Exception:  # an unhandled error: a traceback and exit 1, as the interpreter gives
                    traceback.print_exc()
                    code = 1
        finally:
            sys.argv = saved_argv
            if saved_columns is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = saved_columns
    return subprocess.CompletedProcess(["vtbench", *args], code, out.getvalue(), err.getvalue())


def run_cli(
    *args: str, env: dict[str, str] | None = None, check: int | None = 0, cwd: Path | None = None, process: bool = False
) -> subprocess.CompletedProcess:
    """Run ``vtbench ARGS`` in this process with ``env`` (or as a subprocess when ``process``
    or ``cwd`` is given); assert its exit code unless ``check`` is None."""
    if not (process or cwd is not None or SUBPROCESS_ONLY):
        result = _run_in_process([str(a) for a in args], env)
    else:
        result = subprocess.run(
            [sys.executable, "-m", "vtbench", *map(str, args)],
            capture_output=True,
            text=True,
            env={**(env or os.environ), "COLUMNS": "200"},
            cwd=cwd,
            timeout=600,
        )
    if check is not None:
        assert result.returncode == check, f"exit {result.returncode} != {check}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def start_held_run(args: list, out: Path, env: dict[str, str], release: Path, at: int = 1) -> subprocess.Popen:
    """``vtbench run ARGS --out OUT`` as a process of its own whose test plugin holds at batch
    ``at`` until ``release`` exists (writing ``release``.held when it gets there)."""
    command = [sys.executable, "-m", "vtbench", "run", *map(str, args), "--out", str(out)]
    held = {**env, "VTBENCH_TEST_HOLD": str(release), "VTBENCH_TEST_HOLD_AT": str(at)}
    return subprocess.Popen(command, env=held, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_file(path: Path, process: subprocess.Popen) -> None:
    """Until ``path`` exists: an observable state, not a time (the process must still run; the
    10 minutes are only a guard against a hung test)."""
    import time

    deadline = time.monotonic() + 600
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def interrupted_at(env: dict[str, str], batch: int) -> dict[str, str]:
    """``env`` with the test plugins' Ctrl-C (SIGINT to the running process) while batch ``batch`` is made."""
    return {**env, "VTBENCH_TEST_INTERRUPT_AT": str(batch)}


@pytest.fixture
def cli():
    return run_cli


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def skimage_rgb(name: str) -> np.ndarray:
    import skimage.data

    array = getattr(skimage.data, name)()
    return np.asarray(Image.fromarray(array).convert("RGB"))


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inception weights in torch-fidelity's layout, made once per session (the real file is a download)."""
    from weights_factory import make_inception_weights

    return make_inception_weights(tmp_path_factory.mktemp("inception") / "weights-inception-2015-12-05-6726825d.pth")


@pytest.fixture(scope="session")
def alexnet_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision's AlexNet checkpoint layout (LPIPS-Alex's backbone), made once per session."""
    from weights_factory import make_torchvision_weights

    return make_torchvision_weights("alexnet", tmp_path_factory.mktemp("alexnet") / "alexnet-owt-7be5be79.pth")


@pytest.fixture(scope="session")
def vgg16_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision's VGG16 checkpoint layout (LPIPS-VGG's backbone), made once per session."""
    from weights_factory import make_torchvision_weights

    return make_torchvision_weights("vgg16", tmp_path_factory.mktemp("vgg16") / "vgg16-397923af.pth")


@pytest.fixture(scope="session")
def inception_crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 real 64x64 photo crops, already at evaluation size (so no resize is involved)."""
    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    for i in range(12):
        photo = skimage_rgb(["astronaut", "coffee", "chelsea", "rocket", "camera", "coins"][i % 6])
        top, left = rng.integers(0, photo.shape[0] - 64), rng.integers(0, photo.shape[1] - 64)
        Image.fromarray(np.ascontiguousarray(photo[top : top + 64, left : left + 64])).save(root / f"{i:02d}.png")
    return root


@pytest.fixture(scope="session")
def distribution_run(inception_weights: Path, inception_crops: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """jpeg-q25 on the crops with every Inception metric, reconstructions saved: (its record,
    the folder of its reconstructions)."""
    out = tmp_path_factory.mktemp("distribution")
    env = {**os.environ, "VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT": str(inception_weights)}
    metrics = ["-m", "fid", "-m", "sfid", "-m", "kid", "-m", "isc", "-m", "precision", "-m", "recall"]
    args = ["-t", "jpeg-q25", "-d", inception_crops, *metrics, "--resize-mode", "none", "--save-reconstructions", "-b", "5"]
    run_cli("run", *args, "--out", out, env=env)
    name = f"jpeg-q25__{inception_crops.name}"
    return load_json(out / f"{name}.json"), out / f"{name}.recon"


@pytest.fixture(scope="session")
def fidelity_reference(distribution_run: tuple[dict, Path], inception_weights: Path, inception_crops: Path) -> dict[str, Any]:
    """torch-fidelity's own InceptionV3 on the reconstructions and the originals, one pass
    each, and its own FID, KID and IS functions on those features (what
    ``torch_fidelity.calculate_metrics`` computes from the two folders):
    {"reconstructions" | "originals": {"pool" (N, 2048), "mixed_6d" (Mixed_6d.branch1x1's first
    7 channels flattened, (N, 7*17*17)), float64}, "fid", "kid", "kid_std", "isc": float}."""
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.metric_fid import fid_featuresdict_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_isc import isc_featuresdict_to_metric
    from torch_fidelity.metric_kid import kid_featuresdict_to_metric

    network = FeatureExtractorInceptionV3("check", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(inception_weights))
    captured: list = []
    network.Mixed_6d.branch1x1.register_forward_hook(lambda module, inputs, output: captured.append(output))
    out: dict[str, Any] = {}
    raw = {}
    for side, folder in (("reconstructions", distribution_run[1]), ("originals", inception_crops)):
        captured.clear()
        images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])
        with torch.no_grad():
            pool, logits = network(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
        raw[side] = {"2048": pool, "logits_unbiased": logits}
        out[side] = {"pool": pool.double().numpy(), "mixed_6d": captured[0][:, :7].double().numpy().reshape(len(images), -1)}
    generated, real = raw["reconstructions"], raw["originals"]
    fid = fid_statistics_to_metric(fid_featuresdict_to_statistics(generated, "2048"), fid_featuresdict_to_statistics(real, "2048"), False)
    kid = kid_featuresdict_to_metric(generated, real, "2048", kid_subset_size=12, verbose=False)
    isc = isc_featuresdict_to_metric(generated, "logits_unbiased", verbose=False)
    out.update(fid=fid["frechet_inception_distance"], kid=kid["kernel_inception_distance_mean"],
               kid_std=kid["kernel_inception_distance_std"], isc=isc["inception_score_mean"])  # fmt: skip
    return out


@pytest.fixture(scope="session")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The README's main job, `vtbench run recipes/quickstart.yaml --out ...`, on its first 6
    photographs (the README test runs all 14), once: (its results folder, what it printed)."""
    out = tmp_path_factory.mktemp("results") / "quickstart"
    return out, run_cli("run", REPO / "recipes" / "quickstart.yaml", "--limit", "6", "--out", out).stdout


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 12 real photographs (PNG and JPEG, in subfolders, several sizes)."""
    root = tmp_path_factory.mktemp("photos")
    names = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins"]
    for i, name in enumerate(names):
        image = Image.fromarray(skimage_rgb(name))
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        image.resize((96, 80)).save(sub / f"{name}.png")
        image.resize((64, 64)).save(root / f"{name}_small.jpg", quality=95)
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests run only where torch sees CUDA; elsewhere they are skipped with the reason."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


README_SET_UP = {"make quickstart", "make test", "source .venv/bin/activate"}  # CI runs `make test`, which runs the tests


def readme_commands() -> list[str]:
    """Every command of the README's bash blocks, continuation lines joined, in order."""
    import re

    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip() and not command.strip().startswith("#"):
                commands.append(command.strip())
    return commands


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, int, str]], str]:
    """The README's commands (less the set-up ones), run as written and in order in one shell
    (a variable set by one command is there for the next), in a fresh working folder with the
    repository's recipes: (that folder, [(command, exit code, output)], the shell's stderr)."""
    import re

    folder = tmp_path_factory.mktemp("readme")
    (folder / "recipes").symlink_to(REPO / "recipes")
    commands = [c for c in readme_commands() if c.split("#")[0].strip() not in README_SET_UP]
    script = "\n".join(f"echo '@@@ {i}'\n{command}\necho \"@@@ rc $?\"" for i, command in enumerate(commands))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "200"}
    result = subprocess.run(["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True, timeout=1200)
    found = re.findall(r"@@@ (\d+)\n(.*?)@@@ rc (\d+)\n", result.stdout, flags=re.DOTALL)
    assert len(found) == len(commands), result.stdout[-3000:] + result.stderr[-3000:]
    return folder, [(commands[int(i)], int(rc), output) for i, output, rc in found], result.stderr


def figure_layout_problems(figure: Any) -> list[str]:
    """What a reader of ``figure`` would trip over, found from the drawn figure: two tick labels
    of one axis overlapping, or a legend box over a data point (a line's vertex or a bar)."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    problems = []
    for axes in figure.axes:
        for name, axis, limits in (("x", axes.xaxis, sorted(axes.get_xlim())), ("y", axes.yaxis, sorted(axes.get_ylim()))):
            index = 0 if name == "x" else 1
            labels = [label for label in axis.get_ticklabels() + axis.get_ticklabels(minor=True)
                      if label.get_visible() and label.get_text() and limits[0] <= label.get_position()[index] <= limits[1]]  # fmt: skip
            boxes = [(label.get_text(), label.get_window_extent(renderer)) for label in labels]
            for i, (text, box) in enumerate(boxes):
                problems += [
                    f"{name} tick labels {text!r} and {other!r} overlap" for other, second in boxes[i + 1 :] if box.overlaps(second)
                ]
    legends = [legend for legend in [*figure.legends, *(axes.get_legend() for axes in figure.axes)] if legend is not None]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for axes in figure.axes:
            for line in axes.lines:
                points = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float).reshape(-1, 2))
                problems += [f"the legend covers a point of {line.get_label()!r}" for x, y in points if box.contains(x, y)][:1]
            for patch in axes.patches:
                if box.overlaps(patch.get_window_extent(renderer)):
                    problems.append(f"the legend covers a bar or box of {patch.get_label()!r}")
    return problems
