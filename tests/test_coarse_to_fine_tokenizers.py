"""The 1-D tokenizers whose token count or decoder sampling is an option (DetailFlow, FlexTok,
FlowMo): the release layouts, tiny checkpoints saved in the published formats, ids against the
reference maths, and the recorded options that make a run reproducible."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import load_json, run_cli
from vtbench.tokenizers import create_tokenizer


def test_detailflow_reproduces_the_published_layout() -> None:
    from vtbench.tokenizers.detailflow import DetailFlowModel

    with torch.device("meta"):
        model = DetailFlowModel(tokens=128)  # DetailFlow-16: SigLIP2-so400m cut to 12 layers, a 768-wide decoder
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(state) == 403 and sum(p.numel() for p in model.parameters()) == 270_376_008  # the release's 850 keys less training parts
    assert state["encoder.visual_model.encoder.layers.11.mlp.fc1.weight"] == (4304, 1152)
    assert state["encoder.visual_model.embeddings.patch_embedding.weight"] == (1152, 768)
    assert state["decoder.to_pixel.model.weight"] == (768, 768) and state["quantize.embedding.weight"] == (8192, 8)
    assert state["encoder.latent_tokens"] == (1, 128, 1152) and state["decoder.latent_pos_embed"] == (1, 128, 768)


def make_detailflow_checkpoint(path: Path, tokens: int = 32) -> tuple[Path, torch.nn.Module]:
    """A small DetailFlow saved as the release is: ``{"model": ..., "discriminator": ...}``, the
    model's dict with its training-only parts (the frozen SigLIP2 for alignment, the global-token
    head, self-correction weights, the codebook-usage buffer)."""
    from vtbench.tokenizers.detailflow import DetailFlowModel

    torch.manual_seed(0)
    model = DetailFlowModel(tokens, encoder=(128, 2, 2, 256), decoder=(64, 2, 1, 128), codebook_size=64)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.05 * torch.randn_like(parameter))
    extra = {"repa_model.visual_model.post_layernorm.weight": torch.ones(128), "global_token_proj.0.weight": torch.zeros(1024, 8),
             "refine_conv.weight": torch.zeros(128, 8), "encoder.refined_tokens": torch.zeros(1, tokens, 128),
             "quantize.codebook_used": torch.zeros(65536)}  # fmt: skip
    torch.save({"model": {**model.state_dict(), **extra}, "discriminator": {"heads.0.weight": torch.zeros(2)}}, path)
    return path, model.eval()


def test_detailflow_prefixes_mask_and_resolution_schedule(tmp_path: Path) -> None:
    from vtbench.tokenizers.detailflow import content_resolution, decoder_resolution, patchify

    path, model = make_detailflow_checkpoint(tmp_path / "128.pt")
    images = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(5))
    full = create_tokenizer("detailflow-16", weights=str(path))
    recon, tokens = full.reconstruct(images)
    assert tokens.indices.shape == (2, 32) and tokens.codebook_size == 64 and tokens.bits.tolist() == [32 * 6.0] * 2
    with torch.no_grad():  # the reference maths: nearest L2-normalised code to the latents' 8-d projections
        z = F.normalize(model.quant_conv(model.encoder(images * 2 - 1, 32)), dim=-1)
        codebook = F.normalize(model.quantize.embedding.weight, dim=-1)
        assert torch.equal(tokens.indices, (z @ codebook.T).argmax(-1))
        expected = model.decoder(model.post_quant_conv(codebook[tokens.indices]), 16).clamp(-1, 1)
    torch.testing.assert_close(recon, (expected + 1) / 2)
    # coarse to fine: a prefix encodes the same first tokens, whatever the later latents hold
    for k in (1, 5, 8, 16, 24):
        short = create_tokenizer("detailflow-16", weights=str(path), tokens=k)
        assert torch.equal(short.encode(images).indices, tokens.indices[:, :k]) and short.options()["tokens"] == k
    with torch.no_grad():
        model.encoder.latent_tokens[:, 16:].add_(1.0)
        changed = F.normalize(model.quant_conv(model.encoder(images * 2 - 1, 32)), dim=-1)
    assert torch.equal(changed[:, :16], z[:, :16]) and not torch.equal(changed[:, 16:], z[:, 16:])
    # k tokens decode at r(k) and are resized bicubically to the input
    eight = create_tokenizer("detailflow-16", weights=str(path), tokens=8)
    with torch.no_grad():
        small = model.decoder(model.post_quant_conv(codebook[tokens.indices[:, :8]]), decoder_resolution(8, 32) // 16)
    upsampled = F.interpolate(small, size=(256, 256), mode="bicubic").clamp(-1, 1)
    torch.testing.assert_close(eight.decode(eight.encode(images)), (upsampled + 1) / 2)
    assert eight.info.extra["decoder_resolution"] == small.shape[-1] == 96 and eight.info.tokens_per_image == 8
    # the release's token -> resolution tables (DetailFlow-16, N = 128)
    assert {k: (content_resolution(k, 128), decoder_resolution(k, 128)) for k in (1, 7, 16, 64, 112, 128)} == {
        1: (1, 16), 7: (18, 32), 16: (44, 48), 64: (164, 176), 112: (244, 256), 128: (256, 256)}  # fmt: skip
    unfolded = F.unfold(images, 16, stride=16).view(2, 3, 16, 16, 256).permute(0, 4, 2, 3, 1).reshape(2, 256, 768)
    assert torch.equal(patchify(images), unfolded)  # patches as (row, column, channel)
    with pytest.raises(ValueError, match="trained on the first 1-8 of its 32 tokens and multiples of 8"):
        create_tokenizer("detailflow-16", weights=str(path), tokens=13)
    with pytest.raises(ValueError, match="fixed at 256x256"):
        full.encode(torch.rand(1, 3, 128, 128))


def test_detailflow_token_count_is_a_recorded_option_and_a_user_error(tmp_path: Path) -> None:
    path, _ = make_detailflow_checkpoint(tmp_path / "128.pt")
    out = tmp_path / "runs"
    run_cli("run", "--tokenizer", "detailflow-16:tokens=8", "--weights", str(path), "--dataset", "samples", "--limit", "2",
            "--resolution", "256", "--metric", "psnr", "--metric", "tokens", "--out", str(out))  # fmt: skip
    record = load_json(next(out.glob("*.json")))
    assert record["tokenizer"]["options"]["tokens"] == 8 and record["metrics"]["tokens"]["value"] == 8
    bad = run_cli("run", "--tokenizer", "detailflow-16:tokens=13", "--weights", str(path), "--dataset", "samples", "--limit", "1",
                  "--resolution", "256", "--metric", "psnr", "--out", str(tmp_path / "bad"), check=2)  # fmt: skip
    assert "tokens=13" in bad.stderr and "Traceback" not in bad.stderr
