"""Video codecs as tokenizers (H.264 and VP9 through PyAV/FFmpeg): the video counterpart of
JPEG. A clip is encoded as one stream; its tokens are the encoded bytes (the elementary
stream's packets, no container), so bits per pixel are what the codec spent.

Frames go RGB -> YUV 4:2:0 (FFmpeg's swscale, BT.601 limited range) -> codec -> YUV -> RGB;
sides of odd length are padded by repeating the last row/column and cropped after decoding.
One encoder thread and, for x264, no rate-control lookahead (``rc-lookahead=0``, so no
macroblock tree): with it, the same clip encoded twice in one process gave different sizes now and
then (measured: 1 encode in 40 between tensor work), and a CI gate must not flap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vtbench.tokenizers.base import Tokenizer, TokenizerInfo, Tokens

# x265 is left out: its output size varied from one identical encode to the next in one process
# (whatever its lookahead, cutree and thread settings), which no CI gate can compare.
ENCODERS = {"h264": ("libx264", "h264"), "vp9": ("libvpx-vp9", "vp9")}


class VideoCodec(Tokenizer):
    """A clip through a video codec at a constant rate factor (``crf``) or an average bit rate
    (``bitrate``, kbit/s, single pass; it replaces ``crf`` when both are given), at the encoder's
    ``preset``; images are one-frame clips."""

    def __init__(self, codec: str = "h264", crf: int | None = None, bitrate: float | None = None, preset: str = "medium",
                 gop: int | None = None, fps: float = 24.0) -> None:  # fmt: skip
        import av

        if codec not in ENCODERS:
            raise ValueError(f"video codec {codec!r} is not one of {', '.join(ENCODERS)}")
        if crf is None and bitrate is None:
            raise ValueError(f"{codec}: give crf (constant quality) or bitrate (kbit/s)")
        if bitrate is not None:  # an average bit rate replaces a preset's crf
            crf = None
        encoder, decoder = ENCODERS[codec]
        if encoder not in av.codecs_available:
            raise ValueError(f"{codec}: this PyAV build ({av.__version__}) has no {encoder} encoder")
        self.codec, self.encoder, self.decoder = codec, encoder, decoder
        self.crf = None if crf is None else int(crf)
        self.bitrate = None if bitrate is None else float(bitrate)
        self.preset, self.gop, self.fps = str(preset), None if gop is None else int(gop), float(fps)
        self.name = f"{codec}-" + (f"crf{self.crf}" if self.crf is not None else f"{self.bitrate:g}k")
        self.info = TokenizerInfo(
            family="codec",
            quantizer=codec,
            codebook_size=256,
            source=f"PyAV {av.__version__}, FFmpeg {av.library_versions['libavcodec']} ({encoder})",
            exact_levels=True,
            video=True,
            extra={
                "pixel_format": "yuv420p",
                "colour": "BT.601 limited range (swscale)",
                "threads": 1,
                "x264_params": "rc-lookahead=0:sync-lookahead=0" if encoder == "libx264" else None,
            },  # fmt: skip
        )

    def options(self) -> dict[str, Any]:
        return {"codec": self.codec, "crf": self.crf, "bitrate": self.bitrate, "preset": self.preset, "gop": self.gop, "fps": self.fps}

    def _context(self, width: int, height: int) -> Any:
        import fractions

        import av

        context = av.CodecContext.create(self.encoder, "w")
        context.width, context.height, context.pix_fmt = width, height, "yuv420p"
        context.thread_count, context.thread_type = 1, "NONE"  # one thread: the same bytes every time
        rate = fractions.Fraction(self.fps).limit_denominator(1001)
        context.framerate, context.time_base = rate, 1 / rate
        options = {"threads": "1"}
        if self.encoder == "libx264":
            options["preset"] = self.preset
        if self.encoder == "libx264":  # with its lookahead, x264's output varied between identical encodes in one process
            options["x264-params"] = "rc-lookahead=0:sync-lookahead=0"
        if self.crf is not None:
            options["crf"] = str(self.crf)
            if self.encoder == "libvpx-vp9":
                context.bit_rate = 0
        else:
            context.bit_rate = int(self.bitrate * 1000)
        if self.gop is not None:
            context.gop_size = self.gop
        context.options = options
        return context

    def _encode_clip(self, frames: np.ndarray) -> list[bytes]:
        """(T, H, W, 3) uint8 -> the encoded stream's packets."""
        import av

        height, width = frames.shape[1:3]
        padded = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        context = self._context(padded.shape[2], padded.shape[1])
        packets = []
        for index, frame in enumerate(padded):
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(format="yuv420p")
            video_frame.pts = index
            packets += context.encode(video_frame)
        packets += context.encode(None)
        return [bytes(packet) for packet in packets]

    def _decode_clip(self, packets: list[bytes], frames: int, height: int, width: int) -> np.ndarray:
        import av

        context = av.CodecContext.create(self.decoder, "r")
        decoded = []
        for packet in [*(av.Packet(data) for data in packets), None]:
            decoded += context.decode(packet)
        if len(decoded) != frames:
            raise ValueError(f"{self.name}: decoded {len(decoded)} frames of {frames}")
        return np.stack([frame.to_ndarray(format="rgb24")[:height, :width] for frame in decoded])

    def encode(self, images: torch.Tensor) -> Tokens:
        clips = images if images.dim() == 5 else images.unsqueeze(1)
        arrays = (clips.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()
        encoded = [self._encode_clip(clip) for clip in arrays]
        sizes = torch.tensor([sum(len(packet) for packet in packets) for packets in encoded], dtype=torch.int64)
        frames = clips.shape[1] if images.dim() == 5 else None
        return Tokens(encoded, sizes.to(torch.float64) * 8, sizes, tuple(clips.shape[-2:]), frames=frames)

    def decode(self, tokens: Tokens) -> torch.Tensor:
        height, width = tokens.image_size
        clips = np.stack([self._decode_clip(packets, tokens.frames or 1, height, width) for packets in tokens.data])
        result = torch.from_numpy(clips).permute(0, 1, 4, 2, 3).to(self.device, torch.float32) / 255.0
        return result if tokens.frames is not None else result[:, 0]
