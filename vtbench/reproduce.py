"""Reproducing a preset's published numbers: the paper protocol with the release's own
evaluation transform, then measured against reported, each with its difference and a verdict.

A tokenizer preset's ``reported`` numbers (rFID, PSNR, SSIM, LPIPS, codebook usage, BPP) are
measured on ImageNet-1k val under ``rfid-imagenet-256`` at the preset's native resolution,
with its family's evaluation transform from ``presets.yaml`` (``evaluations``, each read in
the release's code); a generator preset's FID under ``adm-gfid-256``/``-512`` against the ADM
reference batch. ``limit`` makes a quick smoke run: only numbers that do not depend on the
sample count are judged, with wide tolerances, and the result says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vtbench.errors import VtbenchError


@dataclass(frozen=True)
class Tolerance:
    """Agreement within ``absolute`` or ``relative`` (of the reported value), whichever is wider."""

    absolute: float
    relative: float = 0.0

    def allows(self, reported: float, measured: float) -> bool:
        return abs(measured - reported) <= max(self.absolute, self.relative * abs(reported))

    def describe(self) -> str:
        return f"±{self.absolute:g}" + (f" or ±{self.relative:.0%}" if self.relative else "")


@dataclass(frozen=True)
class Reported:
    """How a reported key is measured: the metric, the tolerance of a full reproduction (its
    sampling noise and the documented port differences) and of a smoke run (None: a number
    that depends on the sample count, not judged)."""

    metric: str
    full: Tolerance
    smoke: Tolerance | None


REPORTED: dict[str, Reported] = {
    "rFID": Reported("fid", Tolerance(0.1, 0.05), None),  # FID is biased upwards at small N
    "FID": Reported("fid", Tolerance(0.1, 0.05), None),
    "PSNR": Reported("psnr", Tolerance(0.1), Tolerance(1.0)),
    "SSIM": Reported("ssim", Tolerance(0.01), Tolerance(0.05)),
    "LPIPS": Reported("lpips-vgg", Tolerance(0.005), Tolerance(0.05)),  # the taming/lpips VGG network the releases use
    "usage": Reported("codebook-usage", Tolerance(0.01), None),  # grows with the number of images
    "BPP": Reported("bpp", Tolerance(0.001), Tolerance(0.001)),
}
NOT_MEASURED = {"gFID": "a generator's number"}
DESCRIPTIVE = ("setup", "note", "EMA", "source")
IMAGENET_HELP = (
    "ImageNet-1k validation images are needed (50,000 JPEGs; an image-net.org account): download ILSVRC2012_img_val.tar "
    "from https://image-net.org/download-images, then `mkdir -p DIR && tar -xf ILSVRC2012_img_val.tar -C DIR` and pass --data DIR"
)
ADM_REFERENCES = {
    256: "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/ref_batches/imagenet/256/VIRTUAL_imagenet256_labeled.npz",
    512: "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/ref_batches/imagenet/512/VIRTUAL_imagenet512.npz",
}


FULL_SET = 50_000  # ImageNet val's images, and the ADM protocols' samples: what the reported numbers were measured on


class MissingInputsError(VtbenchError):
    """Weights or data a reproduction needs are not here; the message lists the commands that fetch them."""


@dataclass(frozen=True)
class Plan:
    """What a reproduction runs: the preset, its task, protocol and settings, and what it is compared with."""

    preset: str
    task: str
    protocol: str
    settings: dict[str, Any]
    reported: dict[str, Any]
    evaluation: dict[str, Any] | None
    limit: int | None

    @property
    def smoke(self) -> bool:
        return self.limit is not None


def is_smoke(plan_: Plan, images: int) -> bool:
    """Whether a run of ``images`` is a smoke run: asked for with ``limit``, or short of the
    full set (an incomplete ImageNet folder), whose FID is not comparable with the paper's."""
    return plan_.smoke or images < FULL_SET


def preset_tags(name: str) -> tuple[str, dict[str, Any]]:
    """``(task, tags)`` of a tokenizer or generator preset."""
    from vtbench.generators import GENERATORS
    from vtbench.tokenizers import TOKENIZERS

    if name in TOKENIZERS:
        return "reconstruction", TOKENIZERS.get(name).tags
    if name in GENERATORS:
        return "generation", GENERATORS.get(name).tags
    TOKENIZERS.get(name)  # raises the unknown-name error with suggestions
    raise AssertionError


def plan(name: str, protocol: str | None = None, limit: int | None = None) -> Plan:
    """The run that reproduces preset ``name``'s reported numbers."""
    task, tags = preset_tags(name)
    reported = tags.get("reported")
    if not reported:
        raise VtbenchError(f"{name} has no reported numbers to reproduce (`vtbench show {name}`)")
    resolution = int(tags.get("native_resolution") or 256)
    evaluation = tags.get("evaluation")
    settings: dict[str, Any] = {"limit": limit}
    if task == "reconstruction":
        protocol = protocol or (evaluation or {}).get("protocol") or "rfid-imagenet-256"
        preprocessing = {"resolution": resolution, **(evaluation or {}).get("preprocessing", {})}
        settings["preprocessing"] = preprocessing
        settings["metrics"] = list(dict.fromkeys(REPORTED[key].metric for key in reported if key in REPORTED))  # what is compared
        if not settings["metrics"]:
            unmeasured = [f"{key}: {NOT_MEASURED.get(key, 'not a number vtbench computes')}" for key in reported if key not in DESCRIPTIVE]
            said = ", ".join(unmeasured)
            raise VtbenchError(f"{name} reports no number a tokenizer run measures ({said})")
    else:
        protocol = protocol or f"adm-gfid-{512 if resolution >= 512 else 256}"
    from vtbench.protocols import get

    if get(protocol).task != task:  # an unknown name is refused by get(), with suggestions
        raise VtbenchError(f"protocol {protocol!r} is for {get(protocol).task} runs; {name} is reproduced by a {task} run")
    return Plan(name, task, protocol, settings, dict(reported), evaluation, limit)


def missing_inputs(plan_: Plan, data: str | None) -> list[str]:
    """The commands that fetch what ``plan_`` needs and this machine lacks (weights, data)."""
    from vtbench import weights
    from vtbench.engine.components import create_metrics, weights_digests
    from vtbench.generators import GENERATORS
    from vtbench.protocols import get
    from vtbench.registry import option_defaults
    from vtbench.tokenizers import TOKENIZERS

    def options(entry: Any) -> dict[str, Any]:  # a preset's options over its class's defaults
        return {**(option_defaults(entry.load()) or {}), **entry.defaults}

    def here(name: str) -> bool:
        try:
            weights.locate(name, fetch=False)
        except weights.WeightsUnavailableError:
            return False
        return True

    entry = (TOKENIZERS if plan_.task == "reconstruction" else GENERATORS).get(plan_.preset)
    entries = [entry]
    decoder = entry.tags.get("tokenizer")  # a generator's tokenizer
    if isinstance(decoder, str) and decoder in TOKENIZERS:
        entries.append(TOKENIZERS.get(decoder))
    stores = [plan_.preset, *(options(e).get("checkpoint") for e in entries)]
    commands = [f"vtbench weights fetch {s}" for s in dict.fromkeys(stores) if isinstance(s, str) and s in weights.WEIGHTS and not here(s)]
    for each in entries:
        repo = each.defaults.get("repo")
        if isinstance(repo, str) and not _in_hub_cache(repo, each.defaults.get("revision")):
            commands.append(f"hf download {repo}")
    metric_names = plan_.settings.get("metrics") or get(plan_.protocol).settings.get("metrics", [])
    digests = weights_digests(create_metrics(list(metric_names)))  # None: not on this machine
    commands += [f"vtbench weights fetch {name}" for name, digest in digests.items() if digest is None and name not in stores]
    if plan_.task == "reconstruction" and not (data and Path(data).is_dir()):
        commands.append(IMAGENET_HELP)
    if plan_.task == "generation" and not (data and Path(data).is_file()):
        resolution = 512 if plan_.protocol.endswith("512") else 256
        commands.append(f"curl -LO {ADM_REFERENCES[resolution]}  # the ADM reference batch; pass it as --data")
    return commands


def _in_hub_cache(repo: str, revision: str | None) -> bool:
    """Whether the Hugging Face cache holds a snapshot of ``repo`` (nothing is downloaded)."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo, revision=revision, local_files_only=True, allow_patterns=["*.json"])
    except Exception:  # not cached (the hub library's own error types vary by version)
        return False
    return True


def config(plan_: Plan, data: str, overrides: dict[str, Any] | None = None) -> Any:
    """The run config of ``plan_`` on ``data`` (the ImageNet val folder, or the ADM batch)."""
    from vtbench.settings import GenerationConfig, RunConfig, resolve

    settings = resolve(plan_.task, {"protocol": plan_.protocol}, plan_.settings, overrides or {})
    if plan_.task == "reconstruction":
        return RunConfig(tokenizer=plan_.preset, dataset="imagenet-val", dataset_options={"root": str(data)}, **settings)
    if plan_.smoke:  # the first `limit` samples, not the protocol's 50,000 (None is "not given" to resolve())
        settings["expected_samples"] = None
    return GenerationConfig(generator=plan_.preset, reference=str(data), **settings)


def verdicts(plan_: Plan, measured: dict[str, float | None], images: int) -> list[dict[str, Any]]:
    """One row per reported number: its metric, reported and measured value, difference,
    tolerance and verdict."""
    rows = []
    smoke = is_smoke(plan_, images)
    for key, value in plan_.reported.items():
        if key in DESCRIPTIVE:
            continue
        row: dict[str, Any] = {"reported_as": key, "reported": value, "metric": None, "measured": None, "difference": None,
                               "tolerance": None}  # fmt: skip
        if key in NOT_MEASURED:
            rows.append({**row, "verdict": f"not measured: {NOT_MEASURED[key]}"})
            continue
        if key not in REPORTED or not isinstance(value, (int, float)):
            rows.append({**row, "verdict": "not measured here" if key not in REPORTED else "not a number"})
            continue
        spec = REPORTED[key]
        value_measured = measured.get(spec.metric)
        row |= {"metric": spec.metric, "measured": value_measured}
        if value_measured is None or not math.isfinite(value_measured):
            rows.append({**row, "verdict": "not measured: no value (see the record)"})
            continue
        row["difference"] = value_measured - float(value)
        tolerance = spec.smoke if smoke else spec.full
        if tolerance is None:
            rows.append({**row, "verdict": f"not judged: depends on the sample count ({images} images)"})
            continue
        within = tolerance.allows(float(value), value_measured)
        row["tolerance"] = tolerance.describe()
        verdict = f"{'within' if within else 'outside'} (smoke)" if smoke else "reproduced" if within else "differs"
        rows.append({**row, "verdict": verdict, "within": within})
    return rows


def reproduction_block(plan_: Plan, rows: list[dict[str, Any]], images: int) -> dict[str, Any]:
    """What the record keeps of a reproduction."""
    evaluation = plan_.evaluation or {"transform": f"not checked against the release: {plan_.protocol}'s own"}
    return {
        "preset": plan_.preset,
        "protocol": plan_.protocol,
        "evaluation": evaluation,
        "smoke": is_smoke(plan_, images),
        "limit": plan_.limit,
        "images": images,
        "setup": plan_.reported.get("setup"),
        "source": plan_.reported.get("source"),
        "rows": rows,
        "tolerances": {key: {"metric": spec.metric, **asdict(spec)} for key, spec in REPORTED.items()},
    }


def reproduce(name: str, data: str | None, out: str | Path, protocol: str | None = None, limit: int | None = None,
              overrides: dict[str, Any] | None = None, progress: Any = None) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """Run preset ``name``'s paper protocol on ``data`` and compare with its reported numbers;
    returns the record (with its ``reproduction`` block written in) and that block. Raises
    :class:`MissingInputsError` listing the fetch commands when weights or data are missing."""
    from vtbench.engine import evaluate

    plan_ = plan(name, protocol, limit)
    commands = missing_inputs(plan_, data)
    if commands:
        raise MissingInputsError(f"{name}: cannot reproduce here; fetch what is missing:\n" + "\n".join(f"  {c}" for c in commands))
    record = evaluate(config(plan_, str(data), overrides), out, progress=progress)
    measured = {metric: entry.value for metric, entry in record.metrics.items()}
    images = record.samples.evaluated
    block = reproduction_block(plan_, verdicts(plan_, measured, images), images)
    record.reproduction = block
    record.write(Path(out))
    return record, block
