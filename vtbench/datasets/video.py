"""Video clips: ``frames`` consecutive frames every ``stride`` frames, from video files
(decoded with PyAV), folders of frames, or the built-in camera-motion clips.

A clip dataset is a :class:`~vtbench.datasets.base.Dataset` whose items are clips: ``ids``
name one clip each (``VIDEO@START``, START the first frame's index in the video) and
:meth:`ClipDataset.load_clip` returns its frames; ``load`` returns the first frame, so code that
reads images (the gallery, the probe) still sees a picture. Every frame goes through the run's
preprocessing as an image would.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vtbench.datasets.base import Dataset, Sample
from vtbench.errors import BadImageError, DatasetError
from vtbench.images import IMAGE_EXTENSIONS, decode_image
from vtbench.provenance import portable_path

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")
DEFAULT_FRAMES = 17  # 1 + 4k: what causal video VAEs (Wan, VidTok, Cosmos) take whole


@dataclass
class Clip:
    """One clip: its frames (T arrays (H, W, 3) uint8), a SHA-256 of those frames, extras
    (``fps``, ``video``, ``start``)."""

    id: str
    frames: list[np.ndarray]
    content_sha256: str
    meta: dict[str, Any] = field(default_factory=dict)


def clip_starts(n_frames: int, frames: int, stride: int) -> list[int]:
    """First frames of the clips a video of ``n_frames`` frames holds (whole clips only)."""
    return list(range(0, n_frames - frames + 1, stride))


def frames_sha256(frames: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(f"{frame.shape}".encode())
        digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.hexdigest()


class ClipDataset(Dataset):
    """Clips of ``frames`` frames taken every ``stride`` frames (``stride`` defaults to
    ``frames``: clips side by side) from each video."""

    frames: int = DEFAULT_FRAMES
    stride: int = DEFAULT_FRAMES

    def _check_clip_options(self, frames: int, stride: int | None) -> None:
        if int(frames) < 1:
            raise DatasetError(f"frames must be at least 1, got {frames}")
        self.frames = int(frames)
        self.stride = self.frames if stride is None else int(stride)
        if self.stride < 1:
            raise DatasetError(f"stride must be at least 1, got {stride}")

    def load_clip(self, index: int) -> Clip:
        """Clip ``index``: its frames as uint8 (H, W, 3) arrays."""
        raise NotImplementedError

    def load(self, index: int) -> Sample:
        clip = self.load_clip(index)
        first = clip.frames[0]
        return Sample(clip.id, Image.fromarray(first), clip.content_sha256, clip.meta, first)

    def content_sha256(self, index: int) -> str:
        return self.load_clip(index).content_sha256

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "n_clips": len(self), "frames_per_clip": self.frames, "stride": self.stride}


# -- the built-in clips ---------------------------------------------------------------------------

# photo, (centre x, centre y, window width in source pixels, rotation in degrees) at the start and the end
CAMERA_PATHS: dict[str, tuple[str, tuple[float, float, float, float], tuple[float, float, float, float]]] = {
    "astronaut-pan": ("astronaut", (150.0, 210.0, 240.0, 0.0), (360.0, 230.0, 240.0, 0.0)),
    "coffee-zoom": ("coffee", (300.0, 200.0, 380.0, 0.0), (330.0, 190.0, 190.0, 0.0)),
    "chelsea-orbit": ("chelsea", (140.0, 140.0, 220.0, -4.0), (310.0, 170.0, 200.0, 6.0)),
}


def render_camera_clip(photo: np.ndarray, start: tuple[float, ...], end: tuple[float, ...], n_frames: int, size: int) -> list[np.ndarray]:
    """A camera moving over ``photo`` (H, W, 3) uint8: ``n_frames`` frames of ``size``² pixels,
    the view's centre, width and rotation moving linearly (eased at both ends) from ``start`` to
    ``end``; each frame resampled bicubically from the photograph."""
    image = Image.fromarray(photo)
    frames = []
    for k in range(n_frames):
        t = k / max(n_frames - 1, 1)
        t = 0.5 - 0.5 * math.cos(math.pi * t)  # ease in and out, as a camera operator would
        cx, cy, width, degrees = (a + (b - a) * t for a, b in zip(start, end, strict=True))
        scale, angle = width / size, math.radians(degrees)
        cos, sin = scale * math.cos(angle), scale * math.sin(angle)
        half = size / 2
        # output pixel (x, y) -> source pixel: a rotated, scaled window centred on (cx, cy)
        affine = (cos, -sin, cx - cos * half + sin * half, sin, cos, cy - sin * half - cos * half)
        frames.append(np.asarray(image.transform((size, size), Image.Transform.AFFINE, affine, Image.Resampling.BICUBIC)))
    return frames


class CameraClips(ClipDataset):
    """Three short videos made offline from scikit-image photographs under a moving camera
    (a pan, a zoom, a rotating pan); 34 frames each at 24 fps, two 17-frame clips per video."""

    description = "Built-in clips: a camera panning, zooming and turning over scikit-image photographs (no download)"
    decodes_files = False
    fps = 24.0

    def __init__(self, frames: int = DEFAULT_FRAMES, stride: int | None = None, size: int = 128, length: int = 34) -> None:
        self._check_clip_options(frames, stride)
        if not 16 <= int(size) <= 512:
            raise DatasetError(f"size must be 16 to 512 pixels, got {size}")
        if int(length) < self.frames:
            raise DatasetError(f"length ({length} frames) must hold at least one clip of {self.frames} frames")
        self.name, self.size, self.length = "clips", int(size), int(length)
        self._clips = [(video, start) for video in sorted(CAMERA_PATHS) for start in clip_starts(self.length, self.frames, self.stride)]
        self._videos: dict[str, list[np.ndarray]] = {}

    @property
    def ids(self) -> list[str]:
        return [f"{video}@{start:05d}" for video, start in self._clips]

    def video(self, name: str) -> list[np.ndarray]:
        """Every frame of the built-in video ``name``, rendered once."""
        if name not in self._videos:
            import skimage.data

            photo_name, start, end = CAMERA_PATHS[name]
            self._videos[name] = render_camera_clip(getattr(skimage.data, photo_name)(), start, end, self.length, self.size)
        return self._videos[name]

    def load_clip(self, index: int) -> Clip:
        video, start = self._clips[index]
        frames = self.video(video)[start : start + self.frames]
        return Clip(self.ids[index], frames, frames_sha256(frames), {"fps": self.fps, "video": video, "start": start})

    def describe(self) -> dict[str, Any]:
        import skimage

        return {**super().describe(), "fps": self.fps, "size": self.size,
                "source": f"rendered from scikit-image {skimage.__version__} photographs ({', '.join(CAMERA_PATHS)})"}  # fmt: skip


# -- videos on disk ---------------------------------------------------------------------------------


def count_frames(path: Path) -> tuple[int, float]:
    """(frames, frames per second) of a video file's first video stream, without decoding pixels
    where the container states the count."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise BadImageError(str(path), "no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
        if stream.frames:
            return int(stream.frames), fps
        return sum(1 for _ in container.decode(stream)), fps


def decode_frames(path: Path, start: int, count: int) -> list[np.ndarray]:
    """Frames ``start`` .. ``start + count - 1`` of a video file as RGB uint8 (H, W, 3)."""
    import av

    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            for position, frame in enumerate(container.decode(container.streams.video[0])):
                if position >= start:
                    frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) == count:
                    break
    except (av.error.FFmpegError, IndexError) as exc:
        raise BadImageError(str(path), f"cannot decode the video: {exc}") from exc
    if len(frames) < count:
        raise BadImageError(str(path), f"has {start + len(frames)} frames; the clip needs frames {start} to {start + count - 1}")
    return frames


class VideoFolder(ClipDataset):
    """Every video file under ``root`` (recursively; decoded with PyAV) and every folder of
    frames (a folder holding image files, read in name order, at ``fps``), cut into clips."""

    description = "Video files and folders of frames under a folder, as clips (options: root, frames, stride, fps)"

    def __init__(self, root: str | Path, frames: int = DEFAULT_FRAMES, stride: int | None = None, fps: float = 24.0) -> None:
        self._check_clip_options(frames, stride)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(f"video folder {self.root} does not exist or is not a folder")
        self.name, self.fps = self.root.name or "videos", float(fps)
        files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        frame_folders = sorted(
            {p.parent for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()}, key=lambda p: p.as_posix()
        )
        self._clips: list[tuple[str, Path, int, float, str | None]] = []  # id, source, start, fps, error
        for source in sorted([*files, *frame_folders], key=lambda p: p.relative_to(self.root).as_posix()):
            name = source.relative_to(self.root).as_posix() or "."
            try:
                n_frames, fps_of_file = (len(self._frame_files(source)), self.fps) if source.is_dir() else count_frames(source)
            except Exception as exc:  # a broken video is one failed clip, named, never a crash of the whole folder
                problem = exc.problem if isinstance(exc, BadImageError) else f"cannot open the video: {type(exc).__name__}: {exc}"
                self._clips.append((f"{name}@00000", source, 0, 0.0, problem))
                continue
            starts = clip_starts(n_frames, self.frames, self.stride)
            if not starts:
                self._clips.append((f"{name}@00000", source, 0, fps_of_file, f"has {n_frames} frames, fewer than a clip's {self.frames}"))
            self._clips += [(f"{name}@{start:05d}", source, start, fps_of_file or self.fps, None) for start in starts]
        if not self._clips:
            raise DatasetError(f"no videos found in {self.root} (looked for {', '.join(VIDEO_EXTENSIONS)} and folders of frames)")

    @staticmethod
    def _frame_files(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())

    @property
    def ids(self) -> list[str]:
        return [clip[0] for clip in self._clips]

    def load_clip(self, index: int) -> Clip:
        clip_id, source, start, fps, error = self._clips[index]
        if error is not None:
            raise BadImageError(clip_id, error)
        if source.is_dir():
            paths = self._frame_files(source)[start : start + self.frames]
            frames = [np.asarray(decode_image(path.read_bytes(), str(path))) for path in paths]
        else:
            frames = decode_frames(source, start, self.frames)
        shapes = {frame.shape for frame in frames}
        if len(shapes) > 1:
            raise BadImageError(clip_id, f"frames differ in size ({', '.join(sorted(str(s[1::-1]) for s in shapes))})")
        return Clip(clip_id, frames, frames_sha256(frames), {"fps": fps, "video": source.relative_to(self.root).as_posix(), "start": start})

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "root": portable_path(self.root)}
