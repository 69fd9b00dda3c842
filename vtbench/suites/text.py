"""The built-in text suite: lines in five scripts at six font sizes on plain and textured
backgrounds, rendered deterministically with the Debian Noto / DejaVu fonts, with the exact
transcript and box of every line stored beside the images (``annotations.jsonl``).

Image side 512 px; font sizes 8-48 px span the size buckets of
``vtbench.metrics.text.size_bucket`` (tiny < 2% of the image height ... large >= 8%).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vtbench.errors import DatasetError

VERSION = 1
SIDE = 512
MARGIN = 16
FONT_SIZES = (8, 11, 16, 22, 32, 48)
BACKGROUNDS = ("plain", "textured")

SENTENCES = {
    "en": [
        "The quick brown fox jumps over the lazy dog",
        "Visual tokenizers must preserve small text",
        "Pack my box with five dozen liquor jugs",
        "Sphinx of black quartz, judge my vow",
        "How vexingly quick daft zebras jump",
        "The five boxing wizards jump quickly",
    ],
    "zh": [
        "视觉分词器需要保留文字细节",
        "今天天气很好我们去公园散步",
        "图像重建的质量非常重要",
        "学习中文需要很多时间",
        "这本书的内容非常有意思",
        "我们明天早上八点开会",
    ],
    "ja": [
        "今日はとても良い天気です",
        "画像の細かい文字を保存する",
        "東京は日本の首都です",
        "私は毎朝コーヒーを飲みます",
        "この本はとても面白いです",
        "新しい技術を学ぶのは楽しい",
    ],
    "ko": [
        "오늘은 날씨가 아주 좋습니다",
        "이미지의 작은 글씨를 보존합니다",
        "서울은 한국의 수도입니다",
        "저는 매일 아침 커피를 마십니다",
        "이 책은 정말 재미있습니다",
        "새로운 기술을 배우는 것은 즐겁습니다",
    ],
    "hi": [
        "आज मौसम बहुत अच्छा है",
        "छवि में छोटे अक्षरों को सुरक्षित रखें",
        "दिल्ली भारत की राजधानी है",
        "मैं हर सुबह चाय पीता हूँ",
        "यह किताब बहुत रोचक है",
        "नई तकनीक सीखना अच्छा लगता है",
    ],
}

FONT_FILES = {
    "en": ("truetype/dejavu/DejaVuSans.ttf", "fonts-dejavu-core", None),
    "zh": ("opentype/noto/NotoSansCJK-Regular.ttc", "fonts-noto-cjk", "Noto Sans CJK SC"),
    "ja": ("opentype/noto/NotoSansCJK-Regular.ttc", "fonts-noto-cjk", "Noto Sans CJK JP"),
    "ko": ("opentype/noto/NotoSansCJK-Regular.ttc", "fonts-noto-cjk", "Noto Sans CJK KR"),
    "hi": ("truetype/noto/NotoSansDevanagari-Regular.ttf", "fonts-noto-core", None),
}
FONT_ROOTS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


def font(language: str, size: int) -> ImageFont.FreeTypeFont:
    """The suite's font for a language; a missing font names the Debian package to install."""
    relative, package, family = FONT_FILES[language]
    for root in FONT_ROOTS:
        path = root / relative
        if path.is_file():
            for index in range(8 if family else 1):
                face = ImageFont.truetype(str(path), size, index=index, layout_engine=ImageFont.Layout.RAQM)
                if family is None or face.getname()[0] == family:
                    return face
            raise DatasetError(f"text suite: {path} has no face named {family!r}")
    raise DatasetError(f"text suite: font {relative} for {language!r} is missing; apt-get install {package}")


def background(kind: str, seed: int) -> Image.Image:
    if kind == "plain":
        return Image.new("RGB", (SIDE, SIDE), (255, 255, 255))
    from skimage import data

    texture = data.brick().astype(np.float64)  # 512x512 grey
    texture = np.roll(texture, shift=(seed * 37) % SIDE, axis=1)
    light = 200 + 45 * (texture - texture.min()) / max(1e-9, np.ptp(texture))
    tint = np.array([1.0, 0.97, 0.92])
    return Image.fromarray(np.clip(light[..., None] * tint, 0, 255).astype(np.uint8), "RGB")


def wrap(text: str, face: ImageFont.FreeTypeFont, width: int, language: str) -> list[str]:
    """Split ``text`` into lines no wider than ``width`` (at spaces; CJK at any character)."""
    units = list(text) if language in ("zh", "ja") else text.split(" ")
    joiner = "" if language in ("zh", "ja") else " "
    lines, current = [], ""
    for unit in units:
        candidate = f"{current}{joiner}{unit}" if current else unit
        if current and face.getlength(candidate) > width:
            lines.append(current)
            current = unit
        else:
            current = candidate
    return [*lines, current] if current else lines


def render(language: str, size: int, kind: str, seed: int) -> tuple[Image.Image, list[dict[str, Any]]]:
    """One suite image and its regions (one per rendered line)."""
    image = background(kind, seed)
    draw = ImageDraw.Draw(image)
    face = font(language, size)
    sentences = SENTENCES[language][seed % 3 :] + SENTENCES[language][: seed % 3]
    regions: list[dict[str, Any]] = []
    y = MARGIN
    line_gap = max(4, size // 2)
    for sentence in sentences:
        for line in wrap(sentence, face, SIDE - 2 * MARGIN, language):
            left, top, right, bottom = draw.textbbox((MARGIN, y), line, font=face)
            if bottom > SIDE - MARGIN:
                return image, regions
            draw.text((MARGIN, y), line, font=face, fill=(20, 20, 20))
            regions.append({"text": line, "language": language, "box": [left, top, right, bottom], "layout": "line", "text_height": size})
            y = bottom + line_gap
            if len(regions) >= 6:
                return image, regions
    return image, regions


def make_text_suite(out: str | Path, languages: tuple[str, ...] = tuple(SENTENCES)) -> Path:
    """Write the suite (images + ``annotations.jsonl`` + ``suite.json``) into ``out``."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for language in languages:
        for size in FONT_SIZES:
            for seed, kind in enumerate(BACKGROUNDS):
                image, regions = render(language, size, kind, seed + size)
                image_id = f"images/{language}-{size:02d}px-{kind}.png"
                image.save(out / image_id)
                lines.append(json.dumps({"id": image_id, "language": language, "regions": regions}, ensure_ascii=False))
    (out / "annotations.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    suite = {"suite": "text", "version": VERSION, "side": SIDE, "font_sizes": FONT_SIZES, "languages": languages}
    (out / "suite.json").write_text(json.dumps(suite, indent=2))
    return out
