"""vtbench's ADM precision/recall against the ADM evaluator's own graph running in TensorFlow.

The evaluator (openai/guided-diffusion ``evaluations/evaluator.py``) computes its k-NN
manifolds with a TensorFlow ``DistanceBlock`` in float16. This script builds feature sets of
several geometries, runs the evaluator's distance graph and manifold estimator in a Python that
has TensorFlow (a separate virtual environment: ``python -m venv tf && tf/bin/pip install
tensorflow-cpu numpy``) and compares, per case: the float16 row norms (bit for bit), the
distance matrix (entries that differ, in float16 units), and precision and recall, for
vtbench's estimator and for the arithmetic vtbench used before (float32 norms rounded once).

    python benchmarks/adm_manifold_parity.py --tensorflow-python tf/bin/python

writes ``results/benchmarks/adm_manifold_parity.json`` and, with ``--golden PATH``, the
small TensorFlow result the test suite checks against (``tests/data/adm_evaluator_golden.npz``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtbench.metrics.adm_manifold import adm_precision_recall, row_sums, squared_distances  # noqa: E402

TENSORFLOW_SIDE = r"""
import sys, numpy as np, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow.compat.v1 as tf
tf.disable_eager_execution()

def pairwise(U, V):
    # The evaluator's _batch_pairwise_distances: squared norms, then max(nu - 2 U V^T + nv, 0).
    nu = tf.reshape(tf.reduce_sum(tf.square(U), 1), [-1, 1])
    nv = tf.reshape(tf.reduce_sum(tf.square(V), 1), [1, -1])
    return tf.maximum(nu - 2 * tf.matmul(U, V, False, True) + nv, 0.0)

session = tf.Session(config=tf.ConfigProto(allow_soft_placement=True))
with session.graph.as_default():
    a = tf.placeholder(tf.float32, [None, None]); b = tf.placeholder(tf.float32, [None, None])
    d16 = pairwise(tf.cast(a, tf.float16), tf.cast(b, tf.float16))
    dist = tf.cond(tf.reduce_all(tf.math.is_finite(d16)), lambda: tf.cast(d16, tf.float32), lambda: pairwise(a, b))
    ra = tf.placeholder(tf.float32, [None, None]); rb = tf.placeholder(tf.float32, [None, None])
    d3 = dist[..., None]
    a_in = tf.math.reduce_any(d3 <= rb, axis=1); b_in = tf.math.reduce_any(d3 <= ra[:, None], axis=0)
    norms16 = tf.reduce_sum(tf.square(tf.cast(a, tf.float16)), 1)

BATCH, K = 10000, 3

def radii(x):
    out = np.zeros([len(x), 1], np.float32)
    for r in range(0, len(x), BATCH):
        row = np.zeros([min(BATCH, len(x) - r), len(x)], np.float32)
        for c in range(0, len(x), BATCH):
            row[:, c:c + BATCH] = session.run(dist, {a: x[r:r + BATCH], b: x[c:c + BATCH]})
        out[r:r + BATCH, 0] = np.partition(row, np.arange(K + 1), axis=1)[:, K]
    return out

def precision_recall(ref, sample):
    r1, r2 = radii(ref), radii(sample)
    s1 = np.zeros([len(ref), 1], bool); s2 = np.zeros([len(sample), 1], bool)
    for i in range(0, len(ref), BATCH):
        for j in range(0, len(sample), BATCH):
            x, y = session.run([a_in, b_in], {a: ref[i:i + BATCH], b: sample[j:j + BATCH], ra: r1[i:i + BATCH], rb: r2[j:j + BATCH]})
            s1[i:i + BATCH] |= x; s2[j:j + BATCH] |= y
    return float(np.mean(s2.astype(np.float64))), float(np.mean(s1.astype(np.float64))), s1[:, 0], s2[:, 0]

data = np.load(sys.argv[1])
out = {"tensorflow": np.array(tf.__version__)}
for name in sorted({key.split("/")[0] for key in data.files}):
    ref, sample = data[name + "/ref"], data[name + "/sample"]
    p, r, ref_in, sample_in = precision_recall(ref, sample)
    out[name + "/pr"] = np.array([p, r]); out[name + "/ref_in"] = ref_in; out[name + "/sample_in"] = sample_in
    out[name + "/norms"] = session.run(norms16, {a: ref})
    if len(ref) * len(sample) <= 4_000_000:
        out[name + "/D"] = session.run(dist, {a: ref, b: sample})
np.savez(sys.argv[2], **out)
"""


def features(kind: str, count: int, seed: int, dim: int = 2048) -> np.ndarray:
    """Feature vectors of a named geometry, (count, dim) float32, from a legacy RandomState
    (its streams do not change between numpy versions)."""
    rng = np.random.RandomState(seed)
    if kind == "inception-like":  # non-negative, sparse, in clusters (classes): like pool3 activations
        shared = np.random.RandomState(12345)
        scales = shared.gamma(2.0, 0.2, dim)
        centres = shared.gamma(0.6, 1.0, (40, dim)) * scales * (shared.random_sample((40, dim)) < 0.6)
        values = centres[rng.randint(0, 40, count)] * rng.lognormal(0, 0.5, (count, dim)) + rng.normal(0, 0.05, (count, dim)) * scales
        values = np.maximum(values, 0)
    elif kind == "overflow-tail":  # float16 overflows in the second 10,000-row block only
        values = features("inception-like", count, seed, dim)
        values[10_100:] *= 30
    elif kind == "half-normal":
        values = np.abs(rng.normal(0, 0.5, (count, dim)))
    elif kind == "exponential":
        values = rng.exponential(0.3, (count, dim))
    elif kind == "normal":
        values = rng.normal(0, 1, (count, dim))
    elif kind == "large":  # squared norms ~ 1.3e4, near float16's range once doubled
        values = np.abs(rng.normal(0, 2.5, (count, dim)))
    elif kind == "overflow":  # float16 overflows: the evaluator's float32 fallback
        values = np.abs(rng.normal(0, 6, (count, dim)))
    else:
        raise ValueError(kind)
    return values.astype(np.float32)


CASES = [  # name, kind, reference count, sample count
    ("inception-like-300", "inception-like", 300, 300),
    ("inception-like-1000", "inception-like", 1000, 1000),
    ("inception-like-20", "inception-like", 300, 20),
    ("half-normal-300", "half-normal", 300, 300),
    ("exponential-1000", "exponential", 1000, 1000),
    ("normal-500", "normal", 500, 700),
    ("large-300", "large", 300, 300),
    ("overflow-60", "overflow", 60, 40),
    ("inception-like-3000", "inception-like", 3000, 1500),
    ("inception-like-10500", "inception-like", 10500, 2500),
    ("inception-like-10300-samples", "inception-like", 2500, 10300),
    ("overflow-tail-10200", "overflow-tail", 10200, 600),
]
GOLDEN_CASE = "inception-like-300"


def previous_precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """The arithmetic vtbench used before: norms summed in float32 and rounded once, and
    precision read off D(fake, real), recall off D(real, fake)."""

    def distances(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        u16, v16 = u.half().float(), v.half().float()
        norm_u = u16.square().sum(dim=1).half().float()[:, None]
        norm_v = v16.square().sum(dim=1).half().float()[None, :]
        twice = (2 * (u16 @ v16.T).half().float()).half().float()
        return ((norm_u - twice).half().float() + norm_v).half().clamp(min=0).float()

    real_radii = torch.kthvalue(distances(real, real), k + 1, dim=1).values
    fake_radii = torch.kthvalue(distances(fake, fake), k + 1, dim=1).values
    precision = (distances(fake, real) <= real_radii[None, :]).any(dim=1).double().mean()
    recall = (distances(real, fake) <= fake_radii[None, :]).any(dim=1).double().mean()
    return float(precision), float(recall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tensorflow-python", required=True, help="a Python with tensorflow (or tensorflow-cpu) installed")
    parser.add_argument("--out", default="results/benchmarks/adm_manifold_parity.json")
    parser.add_argument("--golden", help=f"also write the {GOLDEN_CASE} case for the test suite here (.npz)")
    args = parser.parse_args()

    sets = {}
    for index, (name, kind, n_ref, n_sample) in enumerate(CASES):
        sets[name] = (kind, 2 * index, features(kind, n_ref, 2 * index), features(kind, n_sample, 2 * index + 1))
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(inputs, **{f"{name}/{side}": arrays[2 + i] for name, arrays in sets.items() for i, side in enumerate(("ref", "sample"))})
        (Path(tmp) / "side.py").write_text(TENSORFLOW_SIDE)
        started = time.perf_counter()
        subprocess.run([args.tensorflow_python, str(Path(tmp) / "side.py"), str(inputs), str(outputs)], check=True)
        tensorflow_seconds = time.perf_counter() - started
        evaluator = dict(np.load(outputs))

    cases = []
    for name, (kind, _seed, ref, sample) in sets.items():
        ref_t, sample_t = torch.from_numpy(ref), torch.from_numpy(sample)
        started = time.perf_counter()
        precision, recall = adm_precision_recall(ref_t, sample_t)
        seconds = time.perf_counter() - started
        norms = row_sums(ref_t.half().float().square().half()).numpy()
        row = {"case": name, "geometry": kind, "reference": len(ref), "samples": len(sample),
               "norms_differing": int((norms.view(np.uint16) != evaluator[name + "/norms"].view(np.uint16)).sum()),
               "evaluator": evaluator[name + "/pr"].tolist(), "vtbench": [precision, recall],
               "vtbench_seconds": round(seconds, 2)}  # fmt: skip
        if name + "/D" in evaluator:
            mine, theirs = squared_distances(ref_t, sample_t).numpy(), evaluator[name + "/D"]
            differing = mine != theirs
            row["distances"] = int(mine.size)
            row["distances_differing"] = int(differing.sum())
            if differing.any() and theirs.dtype == np.float32 and np.all(theirs == theirs.astype(np.float16)):
                unit = np.spacing(np.abs(theirs[differing]).astype(np.float16)).astype(np.float64)
                gap = np.abs(mine[differing].astype(np.float64) - theirs[differing]) / unit
                row["largest_difference_float16_units"] = float(gap.max())
        if len(ref) * len(sample) <= 4_000_000:
            row["previous_vtbench"] = list(previous_precision_recall(ref_t, sample_t))
        cases.append(row)
        print(json.dumps(row), flush=True)

    report = {"what": "ADM precision/recall: vtbench vs the evaluator's DistanceBlock in TensorFlow, same features",
              "tensorflow": str(evaluator["tensorflow"]), "torch": torch.__version__, "machine": platform.machine(),
              "threads": torch.get_num_threads(), "tensorflow_seconds": round(tensorflow_seconds, 1), "cases": cases}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    if args.golden:  # distances are float16 values (the float16 path), stored as such
        kind, seed, ref, sample = sets[GOLDEN_CASE]
        golden = {key.split("/")[1]: value for key, value in evaluator.items() if key.startswith(GOLDEN_CASE + "/")}
        assert np.array_equal(golden["D"], golden["D"].astype(np.float16))
        golden["D"] = golden["D"].astype(np.float16)
        np.savez_compressed(args.golden, kind=np.array(kind), seed=np.array(seed), reference=np.array(len(ref)),
                            samples=np.array(len(sample)), tensorflow=evaluator["tensorflow"], **golden)  # fmt: skip


if __name__ == "__main__":
    main()
