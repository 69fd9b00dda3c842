"""Text preservation: OCR of each reconstruction scored against the ground-truth transcript
(``cer``, ``wer``, ``t-ned``, ``t-acc``) or against the OCR of the original (the same names
with ``-vs-ocr``, VTBench's convention).

Definitions (jiwer / ICDAR / TokBench):
- Normalisation: Unicode NFKC, whitespace runs collapsed to one space, ends stripped; case
  and punctuation are kept. Chinese, Japanese and Korean are segmented by character and
  their whitespace ignored; other scripts split into words on whitespace.
- CER = sum of character edit distances / sum of reference lengths, pooled over every text
  region (can exceed 1 with insertions). WER: the same over word tokens.
- NED = edit distance / max(len(reference), len(hypothesis)) per region; T-NED = 1 - mean NED.
- T-ACC = share of regions whose normalised OCR equals the normalised reference.
Edit distances are Levenshtein (unit costs) from rapidfuzz.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import torch

from vtbench.metrics.base import Metric, MetricBatch

CHARACTER_SEGMENTED = ("zh", "ja", "ko")
LANGUAGES = ("en", "zh", "ja", "ko", "hi", "other")
SIZE_BUCKETS = ("tiny", "small", "medium", "large")  # see ``size_bucket``
NORMALISATION = "NFKC; whitespace collapsed; case and punctuation kept; zh/ja/ko by character without whitespace"


def size_bucket(text_height: float, image_height: float) -> str:
    """Bucket of a text region by its height relative to the image's: tiny < 2%,
    small < 4%, medium < 8%, large otherwise (so a 10-px line is tiny in a 512-px image)."""
    ratio = text_height / max(image_height, 1.0)
    return "tiny" if ratio < 0.02 else "small" if ratio < 0.04 else "medium" if ratio < 0.08 else "large"


def normalise(text: str, language: str = "en") -> str:
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    return "".join(text.split()) if language in CHARACTER_SEGMENTED else text


def characters(text: str, language: str = "en") -> list[str]:
    return list(normalise(text, language))


def words(text: str, language: str = "en") -> list[str]:
    text = normalise(text, language)
    return list(text) if language in CHARACTER_SEGMENTED else text.split()


def edit_distance(reference: list[str] | str, hypothesis: list[str] | str) -> int:
    from rapidfuzz.distance import Levenshtein

    return int(Levenshtein.distance(reference, hypothesis))


@dataclass(frozen=True)
class TextScores:
    """One region's counts: character and word edits and reference lengths, NED, exact match."""

    char_edits: int
    char_length: int
    word_edits: int
    word_length: int
    ned: float
    exact: bool


def score_text(reference: str, hypothesis: str, language: str = "en") -> TextScores:
    ref_chars, hyp_chars = characters(reference, language), characters(hypothesis, language)
    ref_words, hyp_words = words(reference, language), words(hypothesis, language)
    char_edits = edit_distance(ref_chars, hyp_chars)
    longest = max(len(ref_chars), len(hyp_chars))
    return TextScores(
        char_edits=char_edits,
        char_length=len(ref_chars),
        word_edits=edit_distance(ref_words, hyp_words),
        word_length=len(ref_words),
        ned=char_edits / longest if longest else 0.0,
        exact=normalise(reference, language) == normalise(hypothesis, language),
    )


def cer(references: list[str], hypotheses: list[str], language: str = "en") -> float:
    """Pooled character error rate over pairs of texts."""
    scores = [score_text(r, h, language) for r, h in zip(references, hypotheses, strict=True)]
    return sum(s.char_edits for s in scores) / max(1, sum(s.char_length for s in scores))


def wer(references: list[str], hypotheses: list[str], language: str = "en") -> float:
    """Pooled word error rate over pairs of texts."""
    scores = [score_text(r, h, language) for r, h in zip(references, hypotheses, strict=True)]
    return sum(s.word_edits for s in scores) / max(1, sum(s.word_length for s in scores))


MEASURES = {
    "cer": ("character error rate", False),
    "wer": ("word error rate", False),
    "t-ned": ("1 - normalised edit distance", True),
    "t-acc": ("exact-match accuracy", True),
}
COLUMNS = ("char_edits", "char_length", "word_edits", "word_length", "ned", "exact", "language", "bucket")


class TextMetric(Metric):
    """A text-preservation score from the run's OCR of each text region.

    ``against``: ``"ground-truth"`` (the dataset's transcript) or ``"ocr"`` (the OCR of
    the original at the same resolution). Per-image values are the image's own score;
    details give the score per language and per size bucket, and the TokBench-style mean of
    the bucket scores.
    """

    kind = "text"
    needs_ocr = True

    def __init__(self, measure: str = "cer", against: str = "ground-truth") -> None:
        super().__init__()
        if measure not in MEASURES or against not in ("ground-truth", "ocr"):
            raise ValueError(f"text metric: measure {measure!r} / against {against!r}")
        self.measure, self.against = measure, against
        self.needs_original_ocr = against == "ocr"
        self.name = measure if against == "ground-truth" else f"{measure}-vs-ocr"
        label, self.higher_is_better = MEASURES[measure]
        reference = "the ground-truth transcript" if against == "ground-truth" else "the OCR of the original"
        self.description = f"{label} of the reconstruction's OCR against {reference}"
        self.aggregation = "pooled" if measure in ("cer", "wer") else "mean over text regions"
        self.add_state("regions", [], "cat")  # (R, len(COLUMNS)) float64 per batch
        self.add_state("n", torch.zeros((), dtype=torch.int64), "sum")
        self.add_state("missing_reference", torch.zeros((), dtype=torch.int64), "sum")

    def update(self, batch: MetricBatch) -> torch.Tensor:
        per_image = []
        for readings in batch.text or [[] for _ in batch.ids]:
            rows = []
            for reading in readings:
                reference = reading.reference if self.against == "ground-truth" else reading.original_ocr
                if reference is None:
                    self.missing_reference = self.missing_reference + 1
                    continue
                s = score_text(reference, reading.reconstruction_ocr, reading.language)
                language = LANGUAGES.index(reading.language) if reading.language in LANGUAGES else len(LANGUAGES) - 1
                bucket = SIZE_BUCKETS.index(reading.bucket)
                rows.append([s.char_edits, s.char_length, s.word_edits, s.word_length, s.ned, float(s.exact), language, bucket])
            table = torch.tensor(rows, dtype=torch.float64).reshape(-1, len(COLUMNS))
            if len(table):
                self.regions.append(table)
            per_image.append(self._value(table))
        self.n = self.n + sum(1 for v in per_image if v == v)
        return torch.tensor(per_image, dtype=torch.float64)

    def _value(self, table: torch.Tensor) -> float:
        if not len(table):
            return float("nan")
        column = {name: table[:, i] for i, name in enumerate(COLUMNS)}
        if self.measure == "cer":
            return float(column["char_edits"].sum() / column["char_length"].sum().clamp(min=1))
        if self.measure == "wer":
            return float(column["word_edits"].sum() / column["word_length"].sum().clamp(min=1))
        if self.measure == "t-ned":
            return float(1 - column["ned"].mean())
        return float(column["exact"].mean())

    def _table(self) -> torch.Tensor:
        return torch.cat(self.regions) if self.regions else torch.zeros(0, len(COLUMNS), dtype=torch.float64)

    def compute(self) -> float:
        return self._value(self._table())

    def details(self) -> dict[str, Any]:
        table = self._table()
        if not len(table):
            return {}
        language, bucket = table[:, COLUMNS.index("language")], table[:, COLUMNS.index("bucket")]
        by_language = {name: self._value(table[language == i]) for i, name in enumerate(LANGUAGES) if (language == i).any()}
        by_size = {name: self._value(table[bucket == i]) for i, name in enumerate(SIZE_BUCKETS) if (bucket == i).any()}
        return {
            "regions": len(table),
            "by_language": by_language,
            "by_size": by_size,
            "mean_of_size_buckets": sum(by_size.values()) / len(by_size),
            "normalisation": NORMALISATION,
        }

    def warnings(self) -> list[str]:
        missing = int(self.missing_reference)
        if not missing:
            return []
        if self.against == "ground-truth":
            return [f"{missing} text regions have no ground-truth transcript and are not scored (use {self.measure}-vs-ocr)"]
        return [f"{missing} text regions were not read in the original"]
