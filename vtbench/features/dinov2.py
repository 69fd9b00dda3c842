"""DINOv2 ViT-S/B/L-14 from Meta's published ``dinov2_vit*14_pretrain.pth`` files.

The protocol is torch-fidelity's ``dinov2-vit-*-14`` extractor (the FD-DINOv2 of Stein et
al. 2023): TF-1.x-compatible bilinear resize of the uint8 image to 224, ImageNet
normalisation, the final-norm CLS token as the feature. torch-fidelity loads the network
through ``torch.hub`` (code from GitHub); here the same checkpoint is loaded into timm's
ViT, with the position embedding resized once exactly as DINOv2 does on every forward pass
(bicubic, scale factor ``(16 + 0.1) / 37``, no antialiasing), so no network is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vtbench.errors import VtbenchError
from vtbench.features.base import FeatureExtractor
from vtbench.safe_load import load_checkpoint
from vtbench.weights import Located

INPUT_SIZE = 224
PATCH_SIZE = 14
HEAD_DIM = 64  # every DINOv2 ViT uses 64-channel heads
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def resize_position_embedding(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """(1, 1 + M*M, D) -> (1, 1 + grid*grid, D), as DINOv2's ``interpolate_pos_encoding``."""
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:].float()
    side = int(round(patch_pos.shape[1] ** 0.5))
    if side == grid:
        return pos_embed
    dim = patch_pos.shape[-1]
    scale = (grid + 0.1) / side
    resized = F.interpolate(patch_pos.reshape(1, side, side, dim).permute(0, 3, 1, 2), scale_factor=(scale, scale), mode="bicubic")
    resized = resized.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)
    return torch.cat([cls_pos.float(), resized], dim=1).to(pos_embed.dtype)


def build_dinov2(checkpoint: dict[str, torch.Tensor], source: str = "checkpoint") -> torch.nn.Module:
    """A timm ViT at 224 px holding a DINOv2 checkpoint (architecture read from the keys)."""
    from timm.models.vision_transformer import VisionTransformer

    required = ("cls_token", "pos_embed", "patch_embed.proj.weight", "norm.weight")
    missing = [key for key in required if key not in checkpoint]
    if missing:
        raise VtbenchError(f"{source}: not a DINOv2 checkpoint (missing {', '.join(missing)})")
    if any(".mlp.w12." in key for key in checkpoint) or "register_tokens" in checkpoint:
        raise VtbenchError(f"{source}: SwiGLU (ViT-g) and register-token DINOv2 variants are not supported")
    embed_dim = checkpoint["cls_token"].shape[-1]
    depth = len({key.split(".")[1] for key in checkpoint if key.startswith("blocks.")})
    hidden = checkpoint["blocks.0.mlp.fc1.weight"].shape[0]
    model = VisionTransformer(
        img_size=INPUT_SIZE,
        patch_size=PATCH_SIZE,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=embed_dim // HEAD_DIM,
        mlp_ratio=hidden / embed_dim,
        init_values=1.0,
        num_classes=0,
        global_pool="token",
    )
    state = {key: value.float() for key, value in checkpoint.items() if key != "mask_token"}
    state["pos_embed"] = resize_position_embedding(state["pos_embed"], INPUT_SIZE // PATCH_SIZE)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise VtbenchError(f"{source}: does not match the DINOv2 layout: {exc}") from exc
    return model.eval()


class DINOv2(FeatureExtractor):
    """DINOv2 ViT-*/14: 'cls' features (final-norm CLS token; 384/768/1024-d for S/B/L)."""

    provides = ("cls",)
    resolution = INPUT_SIZE

    def __init__(self, located: dict[str, Located], device: torch.device) -> None:
        super().__init__(located, device)
        (weights,) = located.values()
        checkpoint = load_checkpoint(weights.path)
        self.model = build_dinov2(checkpoint, str(weights.path)).to(device)
        self.mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(STD, device=device).view(1, 3, 1, 1) * 255

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        x = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(INPUT_SIZE, INPUT_SIZE), align_corners=False)
        x = (x - self.mean) / self.std
        with torch.inference_mode():
            return {"cls": self.model(x).float()}


def dinov2_extractor(size: str) -> type[DINOv2]:
    """The registered extractor class for one DINOv2 size (``s``, ``b`` or ``l``)."""
    name = f"dinov2-vit-{size}-14"
    attributes = {"name": name, "weights": (name,), "description": f"DINOv2 ViT-{size.upper()}/14 (Meta), CLS token"}
    return type(f"DINOv2ViT{size.upper()}14", (DINOv2,), attributes)


DINOv2ViTS14 = dinov2_extractor("s")
DINOv2ViTB14 = dinov2_extractor("b")
DINOv2ViTL14 = dinov2_extractor("l")
