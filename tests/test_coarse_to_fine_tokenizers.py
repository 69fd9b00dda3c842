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
    from vtbench.tokenizers.detailflow import content_resolution, decoder_resolution
    from vtbench.tokenizers.transformer_blocks import patchify

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
    assert torch.equal(patchify(images, 16), unfolded)  # patches as (row, column, channel)
    broken = torch.load(path, weights_only=True)
    del broken["model"]["decoder.mask_token"]
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="broken.pt: does not match the DetailFlow layout.*Missing key.*decoder.mask_token"):
        create_tokenizer("detailflow-16", weights=str(tmp_path / "broken.pt"))
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


def test_flowmo_reproduces_the_published_layouts() -> None:
    from vtbench.tokenizers.flowmo import FlowMoModel

    for bits, parameters in ((18, 945_374_085), (56, 945_520_081)):  # FlowMo-Lo, FlowMo-Hi
        with torch.device("meta"):
            model = FlowMoModel(bits)
        assert (len(model.state_dict()), sum(p.numel() for p in model.parameters())) == (608, parameters)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert state["encoder.txt_in.weight"] == (768, 56) and state["decoder.txt_in.weight"] == (1152, 57)  # the code and a 1 channel
    assert state["decoder.double_blocks.15.img_mod.lin.weight"] == (6912, 1152) and state["encoder.img_in.weight"] == (768, 48)
    assert state["decoder.double_blocks.0.txt_attn.norm.query_norm.scale"] == (96,) and model.decoder.axes == (12, 42, 42)
    assert state["decoder.final_layer_img.adaLN_modulation.1.weight"] == (2304, 1152)


def make_flowmo_checkpoint(path: Path, ema: bool = True) -> tuple[Path, torch.nn.Module]:
    """A small FlowMo (16 px patches, 384 wide, 6-bit codes) saved as the trainer saves it:
    ``{"total_steps", "model_ema_state_dict", "model_state_dict"}``."""
    from vtbench.tokenizers.flowmo import FlowMoModel

    torch.manual_seed(0)
    raw, averaged = (FlowMoModel(code_dim=6, patch=16, encoder=(384, 1), decoder=(384, 1)) for _ in range(2))
    with torch.no_grad():  # the release initialises the residual gates to zero; trained weights are not
        for parameter in averaged.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    saved = {"total_steps": 10, "model_state_dict": raw.state_dict()}
    if ema:
        saved["model_ema_state_dict"] = averaged.state_dict()
    torch.save(saved, path)
    return path, averaged.eval()


def test_flowmo_bits_sampler_and_seeded_noise(tmp_path: Path) -> None:
    from vtbench.tokenizers.flowmo import GUIDANCE_INTERVAL, image_noise, time_grid

    path, model = make_flowmo_checkpoint(tmp_path / "flowmo_lo.pth")
    tokenizer = create_tokenizer("flowmo-lo", weights=str(path), code_length=16, steps=6, seed=7)
    images = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(6))
    recon, tokens = tokenizer.reconstruct(images)
    with torch.no_grad():
        code = model.encode(images * 2 - 1, 16)
    bits = code > 0  # a channel at exactly 0 is a 0 bit
    assert torch.equal(tokens.indices, sum(bits[..., c].long() << c for c in range(6))) and tokens.codebook_size == 64
    assert tokens.bits.tolist() == [16 * 6.0] * 2
    # the sampler, written out: Euler from noise at t = 1, guidance 1.5 against an all-zero code inside the interval
    signs = bits.float() * 2 - 1
    condition = torch.cat([signs, torch.ones(2, 16, 1)], dim=-1)
    z = image_noise(signs, 7, (3, 256, 256))
    times = [((6 - i) / 6) ** 4 for i in range(7)]
    torch.testing.assert_close(time_grid(6), torch.tensor(times))
    guided = 0
    with torch.no_grad():
        for t, t_next in zip(times, times[1:], strict=False):
            v = model.velocity(z, condition, torch.full((2,), t))
            if GUIDANCE_INTERVAL[0] <= t <= GUIDANCE_INTERVAL[1]:
                guided += 1
                free = model.velocity(z, torch.zeros_like(condition), torch.full((2,), t))
                v = free + 1.5 * (v - free)
            z = z - (t - t_next) * v
    assert guided == 2 and sum(GUIDANCE_INTERVAL[0] <= t <= GUIDANCE_INTERVAL[1] for t in time_grid(25).tolist()) == 6  # as released
    torch.testing.assert_close(recon, (z.clamp(-1, 1) + 1) / 2, atol=2e-5, rtol=0)
    # a reconstruction depends on its tokens and the seed, not on the batch or a second call
    alone = tokenizer.decode(tokenizer.encode(images[1:]))
    torch.testing.assert_close(alone, recon[1:], atol=1e-5, rtol=0)
    assert torch.equal(tokenizer.decode(tokens), recon)
    other = create_tokenizer("flowmo-lo", weights=str(path), code_length=16, steps=6, seed=8)
    assert not torch.allclose(other.decode(tokens), recon, atol=1e-3)
    assert tokenizer.options() | {"weights": ""} == {"checkpoint": "flowmo-lo", "weights": "", "steps": 6, "guidance": 1.5, "seed": 7,
                                                     "code_length": 16, "dtype": "float32"}  # fmt: skip
    assert tokenizer.info.extra["decoder_calls_per_image"] == 8
    no_ema, _ = make_flowmo_checkpoint(tmp_path / "raw.pth", ema=False)
    with pytest.raises(ValueError, match="raw.pth: not a FlowMo \\(EMA\\) checkpoint"):
        create_tokenizer("flowmo-lo", weights=str(no_ema))
    with pytest.raises(ValueError, match="trained on 256x256"):
        tokenizer.encode(torch.rand(1, 3, 128, 128))


def test_store_checkpoints_are_found_where_hf_download_puts_them(tmp_path: Path) -> None:
    from weights_factory import hub_snapshot

    from vtbench import weights

    snapshot = hub_snapshot("ksarge/FlowMo")
    path, _ = make_flowmo_checkpoint(snapshot / "flowmo_hi.pth")  # `hf download ksarge/FlowMo flowmo_hi.pth`
    located = weights.locate("flowmo-hi", fetch=False)
    assert located.path == path and located.sha256 == weights.sha256_file(path)
    tokenizer = create_tokenizer("flowmo-hi", code_length=16)
    assert tokenizer.weights_path == path and tokenizer.info.codebook_size == 64
    path.unlink()
    with pytest.raises(weights.WeightsUnavailableError, match="flowmo_hi.pth .*vtbench weights fetch flowmo-hi"):
        weights.locate("flowmo-hi", fetch=False)


def test_flowmo_sampler_options_are_recorded_and_checked(tmp_path: Path) -> None:
    path, _ = make_flowmo_checkpoint(tmp_path / "flowmo_lo.pth")
    out = tmp_path / "runs"
    run_cli("run", "--tokenizer", "flowmo-lo:code_length=16,steps=2,seed=3", "--weights", str(path), "--dataset", "samples",
            "--limit", "2", "--resolution", "256", "--metric", "psnr", "--metric", "bpp", "--metric", "codebook-entropy",
            "--out", str(out))  # fmt: skip
    record = load_json(next(out.glob("*.json")))
    again = tmp_path / "again"  # the same command twice: the same numbers, so a CI gate on a sampled decoder does not flap
    run_cli("run", "--tokenizer", "flowmo-lo:code_length=16,steps=2,seed=3", "--weights", str(path), "--dataset", "samples",
            "--limit", "2", "--resolution", "256", "--metric", "psnr", "--metric", "bpp", "--metric", "codebook-entropy",
            "--out", str(again))  # fmt: skip
    assert load_json(next(again.glob("*.json")))["metrics"]["psnr"]["value"] == record["metrics"]["psnr"]["value"]
    run_cli("compare", str(out), str(again))  # exit 0: nothing regressed
    per_bit = record["metrics"]["codebook-entropy"]["details"]["per_bit"]  # sign bits: per-bit statistics like MaskBiT's
    assert len(per_bit["p_one"]) == 6 and all(0 <= p <= 1 for p in per_bit["p_one"])
    assert {k: record["tokenizer"]["options"][k] for k in ("steps", "seed", "guidance")} == {"steps": 2, "seed": 3, "guidance": 1.5}
    assert record["metrics"]["bpp"]["value"] == pytest.approx(16 * 6 / 256**2)
    for bad in ("steps=0", "seed=1.5", "guidance=-1"):
        result = run_cli("run", "--tokenizer", f"flowmo-lo:{bad}", "--weights", str(path), "--dataset", "samples", "--limit", "1",
                         "--resolution", "256", "--metric", "psnr", "--out", str(tmp_path / "bad"), check=2)  # fmt: skip
        option = bad.split("=")[0]
        assert f"'{option}'" in result.stderr or bad in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_flextok_reproduces_the_published_layouts() -> None:
    from vtbench.tokenizers.flextok import FlexTokModel

    releases = {"d12_d12": ((768, 12, 2048), (768, 12, 2048), 214, 85_382_406, 172_448_320),
                "d18_d28": ((1152, 18, 3072), (1792, 28, 4778), 400, 287_326_086, 2_169_735_744)}  # fmt: skip
    for encoder, decoder, keys, encoder_parameters, decoder_parameters in releases.values():  # the releases less their 248 VAE tensors
        with torch.device("meta"):
            model = FlexTokModel(encoder, decoder)
        counts = [sum(p.numel() for p in part.parameters()) for part in (model.encoder, model.decoder)]
        assert (len(model.state_dict()), *counts) == (keys, encoder_parameters, decoder_parameters)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    prefix = "decoder.module_dict."
    assert state[prefix + "dec_transformer.blocks.27.adaLN_modulation.1.weight"] == (21504, 1792)  # two rows: patches, registers
    assert state[prefix + "dec_registers_posemb_module.posembs"] == (1, 1, 1792, 256)
    assert state[prefix + "dec_latent_dropout.nullcond"] == (1792,)
    assert state["encoder.module_dict.enc_register_module.registers"] == (256, 1152)
    assert not any(k.endswith(".bias") and ".attn." in k for k in state)  # no biases in attention


FLEXTOK_CONFIG = {
    "vae": {"_target_": "flextok.vae_wrapper.StableDiffusionVAE", "latent_channels": 16, "scaling_factor": 0.88,
            "hf_hub_path": "EPFL-VILAB/flextok_vae_c16", "sample_posterior": True},
    "encoder": {"module_dict": {"enc_transformer": {"dim": 64, "depth": 2, "head_dim": 32}}},
    "decoder": {"module_dict": {"dec_transformer": {"dim": 96, "depth": 2, "head_dim": 32},
                                "dec_time_embedder": {"max_timestep": 1000.0, "frequency_embedding_size": 256}}},
    "regularizer": {"_target_": "flextok.regularizers.quantize_fsq.FSQ", "levels": [8, 8, 8, 5, 5, 5]},
}  # fmt: skip


def install_flextok(repo: str = "EPFL-VILAB/flextok_d12_d12_in1k") -> tuple[torch.nn.Module, torch.nn.Module]:
    """A small FlexTok saved where ``hf download`` puts a release: ``model.safetensors`` holding
    the tokenizer and its VAE (``vae.vae.*``), the Hydra config in the metadata as the release
    writes it (one Python literal per top-level key)."""
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file
    from weights_factory import hub_snapshot

    from vtbench.tokenizers.flextok import FlexTokModel

    torch.manual_seed(0)
    model = FlexTokModel(encoder=(64, 2, 170), decoder=(96, 2, 256), head_dim=32)
    with torch.no_grad():  # adaLN-zero and the zero-initialised heads would make every path trivial
        for parameter in model.parameters():
            parameter.copy_(0.05 * torch.randn_like(parameter))
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        block_out_channels=(32, 32, 32, 32), layers_per_block=1, latent_channels=16)  # fmt: skip
    tensors = {**model.state_dict(), **{f"vae.vae.{k}": v for k, v in vae.state_dict().items()}}
    save_file({k: v.contiguous() for k, v in tensors.items()}, hub_snapshot(repo) / "model.safetensors",
              metadata={k: str(v) for k, v in FLEXTOK_CONFIG.items()})  # fmt: skip
    return model.eval(), vae.eval()


def test_flextok_fsq_ids_and_nested_registers() -> None:
    from vtbench.tokenizers.flextok import FSQ

    fsq = FSQ([8, 8, 8, 5, 5, 5])
    z = torch.randn(500, 6, generator=torch.Generator().manual_seed(9)) * 3
    values = fsq.quantize(z)
    levels = torch.tensor([8, 8, 8, 5, 5, 5.0])
    half = (levels - 1) * 1.001 / 2
    offset = torch.tensor([0.5, 0.5, 0.5, 0, 0, 0])
    digits = torch.round(torch.tanh(z + torch.atanh(offset / half)) * half - offset) + levels // 2  # 0 .. L-1 per channel
    assert digits.min() >= 0 and (digits <= levels - 1).all() and len(torch.unique(digits[:, 0])) == 8
    ids = fsq.ids(values)
    expected = digits[:, 0] + 8 * digits[:, 1] + 64 * digits[:, 2] + 512 * digits[:, 3] + 2560 * digits[:, 4] + 12800 * digits[:, 5]
    assert torch.equal(ids, expected.long()) and int(ids.max()) < 64_000 and torch.equal(fsq.values(ids), values)


def test_flextok_from_the_hub_cache_tokens_and_sampler(tmp_path: Path) -> None:
    from vtbench.tokenizers.flextok import REGISTERS, adaptive_projected_guidance
    from vtbench.tokenizers.sampling import seeded_normal

    model, vae = install_flextok()
    tokenizer = create_tokenizer("flextok-d12-d12-in1k", steps=3, guidance=4.0, apg=False, seed=11, vae_posterior="mean")
    assert tokenizer.scaling_factor == 0.88 and tokenizer.layout["head_dim"] == 32 and tokenizer.info.codebook_size == 64_000
    images = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(8))
    tokens = tokenizer.encode(images)
    with torch.no_grad():
        latents = vae.encode(images * 2 - 1).latent_dist.mean * 0.88
        codes = tokenizer.fsq.quantize(model.encoder(latents))
    assert torch.equal(tokens.indices, tokenizer.fsq.ids(codes)) and tokens.indices.shape == (2, 256)
    # registers are causal: a prefix is the same whatever the later registers hold
    short = create_tokenizer("flextok-d12-d12-in1k", tokens=4, vae_posterior="mean")
    assert torch.equal(short.encode(images).indices, tokens.indices[:, :4]) and short.info.tokens_per_image == 4
    with torch.no_grad():
        model.encoder.module_dict["enc_register_module"].registers[8:].add_(1.0)
        changed = model.encoder(latents)
        model.encoder.module_dict["enc_register_module"].registers[8:].sub_(1.0)
    assert torch.allclose(changed[:, :8], model.encoder(latents)[:, :8], atol=1e-6) and not torch.allclose(
        changed[:, 8:], model.encoder(latents)[:, 8:]
    )
    # the decoder keeps the first k codes and puts the mask token in the other slots
    slots = model.decoder.registers(codes, 4)
    assert torch.equal(slots[:, 4:], model.decoder.module_dict["dec_nested_dropout"].dropout_mask_token.expand(2, REGISTERS - 4, -1))
    # the sampler written out: Euler on t = 1, 2/3, 1/3 from seeded noise, plain guidance against the null token
    four = create_tokenizer("flextok-d12-d12-in1k", tokens=4, steps=3, guidance=4.0, apg=False, seed=11, vae_posterior="mean")
    small = four.encode(images)
    with torch.no_grad():
        x = torch.stack([seeded_normal(11, row.numpy().tobytes(), (16, 32, 32)) for row in small.indices])
        conditioned_slots = model.decoder.registers(
            tokenizer.fsq.values(torch.cat([small.indices, torch.zeros(2, 252, dtype=torch.long)], 1)), 4
        )
        for i in (3, 2, 1):
            t = torch.full((2,), i / 3)
            v = model.decoder(x, conditioned_slots, t)
            free = model.decoder(x, model.decoder.null_registers(2), t)
            x = x - (free + 4.0 * (v - free)) / 3
        expected = (vae.decode(x / 0.88).sample.clamp(-1, 1) + 1) / 2
    recon = four.decode(small)
    torch.testing.assert_close(recon, expected, atol=2e-5, rtol=0)
    torch.testing.assert_close(four.decode(four.encode(images[1:])), recon[1:], atol=1e-4, rtol=0)  # not the batch's doing
    apg = create_tokenizer("flextok-d12-d12-in1k", tokens=4, steps=3, guidance=4.0, seed=11, vae_posterior="mean")
    assert not torch.allclose(apg.decode(small), recon, atol=1e-4)
    # APG: only the part of the (momentum-averaged, norm-capped) difference orthogonal to the conditioned velocity
    conditioned, free = torch.randn(2, 16, 4, 4), torch.randn(2, 16, 4, 4)
    guided = adaptive_projected_guidance(conditioned, free, 3.0, torch.zeros(2, 16, 4, 4))
    update = (guided - conditioned) / 2
    assert torch.allclose((update * conditioned).sum(dim=(1, 2, 3)), torch.zeros(2), atol=1e-4)
    assert torch.allclose(update.flatten(1).norm(dim=1), update.flatten(1).norm(dim=1).clamp(max=2.5))
    sampled = create_tokenizer("flextok-d12-d12-in1k", seed=11)  # the release samples the VAE posterior: seeded per image
    assert torch.equal(sampled.encode(images).indices, sampled.encode(images).indices)
    assert sampled.options()["vae_posterior"] == "sample" and sampled.options()["apg"] is True and sampled.options()["steps"] == 20
    with pytest.raises(ValueError, match="tokens=300: expected a whole number from 1 to 256"):
        create_tokenizer("flextok-d12-d12-in1k", tokens=300)
    with pytest.raises(ValueError, match="vae_posterior='mode'"):
        create_tokenizer("flextok-d12-d12-in1k", vae_posterior="mode")


def test_flextok_weights_folder_and_missing_release(tmp_path: Path) -> None:
    from vtbench.weights import WeightsUnavailableError

    with pytest.raises(WeightsUnavailableError, match="EPFL-VILAB/flextok_d18_d28_dfn is not in the Hugging Face cache.*hf download"):
        create_tokenizer("flextok-d18-d28-dfn")
    install_flextok("EPFL-VILAB/flextok_d18_d18_in1k")
    from huggingface_hub import snapshot_download

    folder = snapshot_download("EPFL-VILAB/flextok_d18_d18_in1k", local_files_only=True)
    out = tmp_path / "runs"
    run_cli("run", "--tokenizer", "flextok-d18-d18-in1k:tokens=2,steps=2", "--weights", folder, "--dataset", "samples", "--limit", "2",
            "--resolution", "256", "--metric", "psnr", "--metric", "tokens", "--out", str(out))  # fmt: skip
    record = load_json(next(out.glob("*.json")))
    options = record["tokenizer"]["options"]
    assert (options["tokens"], options["steps"], options["guidance"], options["seed"]) == (2, 2, 7.5, 0)
    assert record["metrics"]["tokens"]["value"] == 2


def test_a_token_count_sweep_is_one_recipe_and_one_curve(tmp_path: Path) -> None:
    from vtbench.analysis import load_records, rate_quality_curves
    from vtbench.recipe import load_recipe

    shipped = load_recipe(Path(__file__).parents[1] / "recipes" / "coarse-to-fine-sweep.yaml")
    assert sorted(c.options["tokens"] for c in shipped.tokenizers if c.name == "detailflow-16") == [1, 4, 8, 16, 32, 64, 96, 128]
    assert sorted(c.options["tokens"] for c in shipped.tokenizers if c.name.startswith("flextok")) == [2**i for i in range(9)]
    path, _ = make_detailflow_checkpoint(tmp_path / "128.pt")
    points = "\n".join(f"  - {{name: detailflow-16, tokens: {k}, weights: {path}, label: detailflow-k{k}}}" for k in (8, 16, 32))
    recipe = tmp_path / "sweep.yaml"
    recipe.write_text(f"tokenizers:\n{points}\ndatasets: [samples]\nmetrics: [psnr, bpp, tokens]\nlimit: 2\n"
                      "preprocessing: {resolution: 256, mode: center-crop}\n")  # fmt: skip
    run_cli("run", str(recipe), "--out", str(tmp_path / "out"))
    curves = rate_quality_curves(load_records(tmp_path / "out"))
    assert list(curves) == [("detailflow-16", "samples")]  # every token budget on the preset's one curve
    curve = curves[("detailflow-16", "samples")]
    assert curve["run"].tolist() == ["detailflow-k8__samples", "detailflow-k16__samples", "detailflow-k32__samples"]
    assert curve["bits_per_pixel"].tolist() == pytest.approx([k * 6 / 256**2 for k in (8, 16, 32)])
