"""The ADM evaluator's k-NN precision and recall, with its arithmetic.

openai/guided-diffusion ``evaluations/evaluator.py`` computes squared distances in a
TensorFlow graph in float16 (``DistanceBlock``)::

    D = maximum(reduce_sum(square(U16), 1)[:, None] - 2 * matmul(U16, V16^T) + reduce_sum(square(V16), 1)[None, :], 0)

with every operation's result rounded to float16, on blocks of 10,000 x 10,000 rows, and the
float32 formula for a block where any float16 value is not finite. A vector's radius is the
4th smallest entry (k = 3; the first is itself) of its row of ``D(set, set)``; one matrix
``D(reference rows, sample columns)`` gives both precision (samples inside a reference
radius) and recall (references inside a sample radius).

What this module reproduces exactly, operation by operation: the casts, the float16 squares,
the order in which TensorFlow's CPU kernel (Eigen's vectorised tree reduction) adds a row's
squares, each float16 rounding, the one distance matrix, the radius index and the per-block
float32 fallback. What no implementation can reproduce on every machine is the evaluator's own
float32 summation order inside ``matmul``: it depends on the thread count, the cache sizes and
the instruction set the evaluator runs on. Here each dot product is summed in float64 (the
float16 products are exact) and rounded once, so it is the correctly rounded float32 value;
the evaluator's float32 sum can land on the other side of a float16 rounding boundary only
when it lies within a few float32 units of one, which is rare, and a flipped precision or
recall decision rarer still (``benchmarks/adm_manifold_parity.py`` measures it against the
evaluator running in TensorFlow).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import cached_property

import torch

EVALUATOR_BATCH = 10_000  # ManifoldEstimator's row_batch_size and col_batch_size
_PACKET = 8  # Eigen packet width (8 lanes of float32 or float16 with AVX)
_LEAF = {torch.float16: 200, torch.float32: 1024}  # Eigen's tree-reduction leaf size per type
_FLOAT16_MAX = 65504.0


def _add(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``a + b`` as Eigen adds ``dtype``: in float32, rounded once to ``dtype``."""
    return (a.float() + b.float()).to(dtype)


def _leaf_sum(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Eigen's vectorised inner reduction of each row of (rows, n): four 8-lane accumulators
    over 32-element strides, then the remaining whole packets, then the scalar tail; the
    lanes are reduced in float32 pairwise ((i, i+4), (i, i+2), (0, 1)) and rounded once."""
    rows, n = x.shape
    packet = torch.zeros(rows, _PACKET, dtype=dtype, device=x.device)
    start = 0
    if n >= 4 * _PACKET:
        end = n - n % (4 * _PACKET)
        lanes = [torch.zeros(rows, _PACKET, dtype=dtype, device=x.device) for _ in range(4)]
        for offset in range(0, end, 4 * _PACKET):
            for q in range(4):
                lanes[q] = _add(lanes[q], x[:, offset + q * _PACKET : offset + (q + 1) * _PACKET], dtype)
        packet = _add(_add(_add(lanes[0], lanes[1], dtype), lanes[2], dtype), lanes[3], dtype)
        start = end
    for offset in range(start, n - n % _PACKET, _PACKET):
        packet = _add(packet, x[:, offset : offset + _PACKET], dtype)
    tail = torch.zeros(rows, dtype=dtype, device=x.device)
    for column in range(max(start, n - n % _PACKET), n):
        tail = _add(tail, x[:, column], dtype)
    lanes32 = packet.float()
    lanes32 = lanes32[:, :4] + lanes32[:, 4:]
    lanes32 = lanes32[:, :2] + lanes32[:, 2:]
    return _add(tail, (lanes32[:, 0] + lanes32[:, 1]).to(dtype), dtype)


def _tree_sum(x: torch.Tensor, first: int, dtype: torch.dtype) -> torch.Tensor:
    """Eigen's tree reduction of rows that start at flat index ``first`` (mod 8): a row longer
    than 8 leaves is split at a packet-aligned point near its middle, halves summed separately."""
    n = x.shape[1]
    if n <= _PACKET * _LEAF[dtype]:
        return _leaf_sum(x, dtype)
    split = _PACKET * -(-(first + -(-n // 2)) // _PACKET)
    left = min(split - first, n)
    total = _add(torch.zeros(x.shape[0], dtype=dtype, device=x.device), _tree_sum(x[:, :left], first, dtype), dtype)
    if left < n:
        total = _add(total, _tree_sum(x[:, left:], split, dtype), dtype)
    return total


def row_sums(x: torch.Tensor) -> torch.Tensor:
    """``tf.reduce_sum(x, 1)`` of a (rows, d) float16 or float32 tensor as TensorFlow's CPU
    kernel sums it, bit for bit; rows are taken to start the batch the evaluator passes, so a
    row's flat offset is ``row * d``. (rows,) of ``x``'s dtype."""
    dtype = x.dtype
    if dtype not in _LEAF:
        raise TypeError(f"float16 or float32 expected, got {dtype}")
    rows, d = x.shape
    out = torch.empty(rows, dtype=dtype, device=x.device)
    offsets = (torch.arange(rows, device=x.device) % EVALUATOR_BATCH * d) % _PACKET
    for first in offsets.unique().tolist():
        chosen = offsets == first
        out[chosen] = _tree_sum(x[chosen].contiguous(), first, dtype)
    return out


class _Side:
    """One set of feature vectors as the evaluator holds it: float32, float16, and each
    row's squared norm in both (float16 norms summed as TensorFlow sums them)."""

    def __init__(self, features: torch.Tensor) -> None:
        self.f32 = features.detach().float().contiguous()
        self.f16 = self.f32.half()
        self.norms16 = row_sums((self.f16.float().square()).half())
        self.norms64 = self.f16.double().square().sum(dim=1)

    @cached_property
    def norms32(self) -> torch.Tensor:
        """float32 norms, for the evaluator's fallback only."""
        return row_sums(self.f32.square())

    def __len__(self) -> int:
        return len(self.f32)


def _dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``u @ v.T`` summed in float64 and rounded once to float32 (exact products of float16
    or float32 inputs; the result does not depend on the summation order)."""
    return (u.double() @ v.double().T).float()


def _distances16(u: _Side, rows: slice, v: _Side, cols: slice) -> torch.Tensor:
    twice = 2 * _dot(u.f16[rows], v.f16[cols]).half().float()  # exact doubling, inf on overflow
    first = (u.norms16[rows].float()[:, None] - twice).half().float()
    return (first + v.norms16[cols].float()[None, :]).half().clamp(min=0).float()


def _distances32(u: _Side, rows: slice, v: _Side, cols: slice) -> torch.Tensor:
    twice = 2 * _dot(u.f32[rows], v.f32[cols])
    return ((u.norms32[rows][:, None] - twice) + v.norms32[cols][None, :]).clamp(min=0)


def _surely_finite(u: _Side, rows: slice, v: _Side, cols: slice) -> bool:
    """Whether no float16 value of the block can overflow: |u.v| <= |u||v| bounds every term."""
    norm_u, norm_v = u.norms16[rows].float().max(), v.norms16[cols].float().max()
    if not (torch.isfinite(norm_u) and torch.isfinite(norm_v)):
        return False
    dot = 2 * (u.norms64[rows].max() * v.norms64[cols].max()).sqrt() * (1 + 2**-9)
    return bool(norm_u + dot + norm_v < _FLOAT16_MAX * (1 - 2**-10))


def _evaluator_blocks(n: int) -> list[slice]:
    return [slice(start, min(start + EVALUATOR_BATCH, n)) for start in range(0, n, EVALUATOR_BATCH)]


def _chunks(block: slice, rows: int) -> list[slice]:
    return [slice(start, min(start + rows, block.stop)) for start in range(block.start, block.stop, rows)]


def distance_rows(u: _Side, v: _Side, rows: int = 1024) -> Iterator[tuple[slice, slice, torch.Tensor]]:
    """The evaluator's ``DistanceBlock.pairwise_distances`` over all of ``u`` x ``v``, yielded
    as (row slice, column slice, float32 (r, c) squared distances) at most ``rows`` rows at
    a time, each evaluator block in float16 unless one of its values is not finite. All
    column blocks of a row chunk come one after another."""
    for row_block in _evaluator_blocks(len(u)):
        computes = []
        for col_block in _evaluator_blocks(len(v)):
            in_float16 = _surely_finite(u, row_block, v, col_block) or all(
                bool(torch.isfinite(_distances16(u, chunk, v, col_block)).all()) for chunk in _chunks(row_block, rows)
            )
            computes.append((col_block, _distances16 if in_float16 else _distances32))
        for chunk in _chunks(row_block, rows):
            for col_block, compute in computes:
                yield chunk, col_block, compute(u, chunk, v, col_block)


def squared_distances(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(M, D) x (N, D) -> (M, N) float32: what the evaluator's ``DistanceBlock`` returns."""
    left, right = _Side(u), _Side(v)
    out = torch.empty(len(left), len(right), device=u.device)
    for rows, cols, block in distance_rows(left, right):
        out[rows, cols] = block
    return out


def manifold_radii(side: _Side, k: int = 3, rows: int = 1024) -> torch.Tensor:
    """Each vector's squared distance to its k-th neighbour: entry ``k`` of its sorted row of
    ``D(set, set)`` (entry 0 is itself), (N,) float32."""
    radii = torch.empty(len(side), device=side.f32.device)
    for chunk, blocks in itertools.groupby(distance_rows(side, side, rows), key=lambda part: (part[0].start, part[0].stop)):
        row = torch.cat([block for _, _, block in blocks], dim=1)  # column blocks come in order
        radii[chunk[0] : chunk[1]] = torch.kthvalue(row, k + 1, dim=1).values
    return radii


def adm_precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3, rows: int = 1024) -> tuple[float, float]:
    """``(precision, recall)`` as the ADM evaluator's ``compute_prec_recall(real, fake)``:
    precision is the fraction of ``fake`` inside some ``real`` radius, recall the fraction of
    ``real`` inside some ``fake`` radius, both read off one ``D(real, fake)``. (N, D) each;
    memory about ``rows`` x N x 12 bytes."""
    reference, samples = _Side(real), _Side(fake)
    reference_radii, sample_radii = manifold_radii(reference, k, rows), manifold_radii(samples, k, rows)
    reference_inside = torch.zeros(len(reference), dtype=torch.bool, device=reference.f32.device)
    samples_inside = torch.zeros(len(samples), dtype=torch.bool, device=samples.f32.device)
    for chunk, cols, block in distance_rows(reference, samples, rows):
        reference_inside[chunk] |= (block <= sample_radii[cols][None, :]).any(dim=1)
        samples_inside[cols] |= (block <= reference_radii[chunk][:, None]).any(dim=0)
    return float(samples_inside.double().mean()), float(reference_inside.double().mean())
