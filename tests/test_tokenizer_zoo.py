"""The tokenizer zoo through the code paths users hit: presets as data, hub models read from
the Hugging Face cache (tiny models the tests save there in the upstream layout), a user's
own checkpoint with --weights, and the errors for what is missing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from weights_factory import hub_snapshot, make_llamagen_checkpoint, tiny_diffusers_model

from conftest import load_json, run_cli
from vtbench.engine import RunConfig, evaluate
from vtbench.images import Preprocessing
from vtbench.tokenizers import TOKENIZERS, create_tokenizer
from vtbench.weights import WeightsUnavailableError

# preset -> (diffusers class, downsampling of the tiny config, latent channels)
DIFFUSERS_PRESETS = {
    "sd-vae-ft-mse": ("AutoencoderKL", 2, 4),
    "amused-vqgan-256": ("VQModel", 2, 4),
    "taesd": ("AutoencoderTiny", 2, 4),
    "dc-ae-f32c32-in": ("AutoencoderDC", 2, 8),
}


def install_in_hub_cache(preset: str, variant: str | None = None) -> torch.nn.Module:
    """Save a tiny model of the preset's class where ``hf download`` would put the real one."""
    options = TOKENIZERS.get(preset).defaults
    model = tiny_diffusers_model(variant or options["model_class"]).eval()
    folder = hub_snapshot(options["repo"])
    model.save_pretrained(folder / options["subfolder"] if options.get("subfolder") else folder)
    return model


@pytest.fixture(scope="module")
def hub_models() -> dict[str, torch.nn.Module]:
    return {preset: install_in_hub_cache(preset) for preset in DIFFUSERS_PRESETS}


def test_presets_are_data_with_their_provenance() -> None:
    for name in ("sd-vae-ft-mse", "sdxl-vae", "sd35-vae", "flux1-vae", "flux2-vae", "dc-ae-f32c32-in", "taesd", "amused-vqgan-256"):
        tags = TOKENIZERS.get(name).tags
        assert tags["source"].startswith("hf://") and tags["license"] and tags["paper"] and tags["family"] in ("continuous", "discrete")
    assert TOKENIZERS.get("jpeg-q50").defaults == {"quality": 50}
    shown = load_json_output(run_cli("show", "sd35-vae", "--json").stdout)
    assert shown["options"]["subfolder"] == "vae" and shown["latent_scale"] == 1.5305 and shown["family"] == "continuous"
    listed = load_json_output(run_cli("list", "tokenizers", "--family", "vq", "--json").stdout)
    names = {e["name"] for e in listed["entries"]}
    assert {"amused-vqgan-256", "movq-kandinsky22", "llamagen-vq-ds16-c2i", "janus-pro-1b-vq"} <= names
    assert all(TOKENIZERS.get(name).tags["quantizer"] == "vq" for name in names) and "var-vqvae-256" not in names


def load_json_output(text: str) -> dict:
    import json

    return json.loads(text)


@pytest.mark.parametrize("preset", DIFFUSERS_PRESETS)
def test_diffusers_preset_matches_the_library_forward_pass(preset: str, hub_models: dict[str, torch.nn.Module]) -> None:
    model_class, factor, channels = DIFFUSERS_PRESETS[preset]
    model = hub_models[preset]
    tokenizer = create_tokenizer(preset)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    recon, tokens = tokenizer.reconstruct(images)
    x = images * 2 - 1
    with torch.no_grad():
        if model_class == "AutoencoderKL":
            expected = model.decode(model.encode(x).latent_dist.mode()).sample
        elif model_class == "VQModel":
            expected = model.decode(model.encode(x).latents).sample  # diffusers quantizes inside decode
        elif model_class == "AutoencoderTiny":
            expected = model.decode(model.encode(x).latents).sample
        else:
            expected = model.decode(model.encode(x).latent).sample
    torch.testing.assert_close(recon, (expected + 1) / 2, rtol=1e-4, atol=1e-5)
    positions = (32 // factor) ** 2
    assert tokens.counts.tolist() == [positions, positions]
    if model_class == "VQModel":
        assert tokenizer.info.family == "discrete" and tokenizer.info.codebook_size == 64
        assert tokens.indices.shape == (2, 32 // factor, 32 // factor) and int(tokens.indices.max()) < 64
        assert tokens.bits.tolist() == [positions * math.log2(64)] * 2
    else:
        assert tokenizer.info.family == "continuous"
        assert tokens.bits.tolist() == [positions * channels * 32.0] * 2  # float32 latents
    assert tokenizer.info.extra["parameters"] == sum(p.numel() for p in model.parameters())


def test_kl_scaling_and_posterior_sampling_are_recorded_and_seeded(hub_models: dict[str, torch.nn.Module]) -> None:
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    model = hub_models["sd-vae-ft-mse"]
    mean_tokens = create_tokenizer("sd-vae-ft-mse").encode(images)
    with torch.no_grad():
        posterior_mean = model.encode(images * 2 - 1).latent_dist.mode()
    torch.testing.assert_close(mean_tokens.data, (posterior_mean - 0.1) * 0.5)  # (z - shift_factor) * scaling_factor
    first = create_tokenizer("sd-vae-ft-mse", posterior="sample", seed=3).encode(images).data
    again = create_tokenizer("sd-vae-ft-mse", posterior="sample", seed=3).encode(images).data
    assert torch.equal(first, again) and not torch.allclose(first, mean_tokens.data)


def test_hub_tokenizers_run_through_the_runner_deterministically(hub_models: dict[str, torch.nn.Module], tmp_path: Path) -> None:
    for preset in ("sd-vae-ft-mse", "amused-vqgan-256"):
        records = [
            evaluate(
                RunConfig(preset, "samples", metrics=["psnr"], limit=2, preprocessing=Preprocessing(32), num_workers=0), tmp_path / str(i)
            )
            for i in range(2)
        ]
        first, second = records
        assert first.value("psnr") == second.value("psnr")
        assert first.subject.info["extra"]["library"].startswith("diffusers")
        assert first.subject.options["posterior"] == "mean" and first.samples.evaluated == 2
        assert first.value("tokens") == 256
        cost = first.cost
        assert cost.tokens_per_image == 256 and cost.calls >= 1 and cost.encode_ms_per_call > 0
        if preset == "sd-vae-ft-mse":  # 4 x 16 x 16 float32 latents for a 32 x 32 image
            assert cost.latent == {"shape_per_image": [4, 16, 16], "dtype": "float32", "at_size": "32x32"}
            assert cost.bits_per_token == 4 * 32 and cost.compression_vs_rgb24 == pytest.approx(24 * 32 * 32 / (4 * 16 * 16 * 32))
        else:  # 16 x 16 ids of a 64-entry codebook
            assert cost.latent is None and cost.bits_per_token == 6 and cost.compression_vs_rgb24 == pytest.approx(24 * 1024 / 1536)


def test_own_checkpoint_folder_with_weights(tmp_path: Path) -> None:
    model = tiny_diffusers_model("AutoencoderKL", seed=5)
    model.save_pretrained(tmp_path / "my-vae")
    run_cli(
        "run", "-t", "sd-vae-ft-mse", "--weights", tmp_path / "my-vae", "-d", "samples", "--limit", "1", "-m", "psnr",
        "--resolution", "32", "--workers", "0", "--out", tmp_path / "out",
    )  # fmt: skip
    record = load_json(next((tmp_path / "out").glob("*.json")))
    assert record["tokenizer"]["options"]["weights"] == str(tmp_path / "my-vae")
    several = run_cli(
        "run", "-t", "sd-vae-ft-mse", "-t", "taesd", "--weights", tmp_path / "my-vae", "-d", "samples", "--out", tmp_path, check=2
    )  # fmt: skip
    assert "-t NAME:weights=PATH" in several.stderr
    assert record["tokenizer"]["info"]["source"] == str(tmp_path / "my-vae")


def test_missing_hub_model_names_the_repository_and_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match=r"stabilityai/stable-diffusion-3.5-large/vae.*hf download .*--include 'vae/\*'"):
        create_tokenizer("sd35-vae")
    with pytest.raises(WeightsUnavailableError, match=r"stabilityai/sdxl-vae .*`hf download stabilityai/sdxl-vae`"):
        evaluate(RunConfig("sdxl-vae", "samples", limit=1), tmp_path)
    with pytest.raises(WeightsUnavailableError, match="no such file"):
        create_tokenizer("sd-vae-ft-mse", weights=str(tmp_path / "nothing-here"))


def codebook_metrics(batches: list[tuple[torch.Tensor, int]]) -> dict[str, float]:
    from vtbench.metrics import MetricBatch, create_metric
    from vtbench.tokenizers.base import Tokens

    values = {}
    for statistic in ("usage", "entropy", "perplexity"):
        metric = create_metric(f"codebook-{statistic}")
        for ids, size in batches:
            n = ids.shape[0]
            tokens = Tokens(None, torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.int64), (1, 1), ids, size)
            metric.update(MetricBatch([str(i) for i in range(n)], torch.zeros(n, 3, 1, 1), torch.zeros(n, 3, 1, 1), tokens=tokens))
        values[statistic] = metric.compute()
        values[f"{statistic}-details"] = metric.details()
    return values


def test_codebook_statistics_match_hand_computed_values_in_any_batching() -> None:
    ids = torch.tensor([[0, 0], [1, 3]])  # p = 1/2, 1/4, 1/4 over a 4-entry codebook
    expected_entropy = 1.5
    for batches in ([(ids, 4)], [(ids[:1], 4), (ids[1:], 4)]):
        values = codebook_metrics(batches)
        assert values["usage"] == 0.75
        assert values["entropy"] == pytest.approx(expected_entropy)
        assert values["perplexity"] == pytest.approx(2**expected_entropy)
        assert values["usage-details"]["per_bit"]["p_one"] == [0.5, 0.25]  # bit 0 is set in ids 1 and 3, bit 1 in id 3


def test_codebook_statistics_are_sparse_for_a_2_to_the_48_binary_codebook() -> None:
    generator = torch.Generator().manual_seed(0)
    bit_probability = torch.linspace(0.05, 0.95, 48)
    bits = (torch.rand(64, 256, 48, generator=generator) < bit_probability).to(torch.int64)
    ids = (bits << torch.arange(48)).sum(dim=-1)
    values = codebook_metrics([(ids[:32], 2**48), (ids[32:], 2**48)])
    details = values["usage-details"]
    assert details["codebook_size"] == 2**48 and details["codes_used"] == len(torch.unique(ids))
    assert values["usage"] == pytest.approx(len(torch.unique(ids)) / 2**48)
    observed = bits.reshape(-1, 48).double().mean(dim=0)
    assert details["per_bit"]["p_one"] == pytest.approx(observed.tolist(), abs=1e-6)


def test_codebook_usage_through_the_runner_and_continuous_tokenizers_say_why_not(
    hub_models: dict[str, torch.nn.Module], tmp_path: Path
) -> None:
    import numpy as np

    from vtbench.datasets import DATASETS

    config = RunConfig("identity", "samples", metrics=["codebook-usage"], limit=3, preprocessing=Preprocessing(32), num_workers=0)
    record = evaluate(config, tmp_path)
    samples = DATASETS.create("samples")
    pixels = np.concatenate([np.asarray(Preprocessing(32).apply(samples.load(i).image)).ravel() for i in range(3)])
    assert record.value("codebook-usage") == pytest.approx(len(np.unique(pixels)) / 256)
    continuous = evaluate(RunConfig("sd-vae-ft-mse", "samples", metrics=["codebook-usage"], limit=1, num_workers=0,
                                    preprocessing=Preprocessing(32)), tmp_path / "vae")  # fmt: skip
    entry = continuous.metrics["codebook-usage"]
    assert entry.value is None and entry.status == "undefined" and "no discrete codes" in entry.warnings[0]


# Facts about the published vq_ds16_c2i.pt (key -> shape), from LlamaGen's vq_model.py.
LLAMAGEN_DS16_LAYOUT = {
    "encoder.conv_in.weight": (128, 3, 3, 3),
    "encoder.conv_blocks.0.downsample.conv.weight": (128, 128, 3, 3),
    "encoder.conv_blocks.2.res.0.nin_shortcut.weight": (256, 128, 1, 1),
    "encoder.conv_blocks.4.attn.1.q.weight": (512, 512, 1, 1),
    "encoder.mid.1.proj_out.weight": (512, 512, 1, 1),
    "encoder.conv_out.weight": (256, 512, 3, 3),
    "quant_conv.weight": (8, 256, 1, 1),
    "post_quant_conv.weight": (256, 8, 1, 1),
    "quantize.embedding.weight": (16384, 8),
    "decoder.conv_in.weight": (512, 256, 3, 3),
    "decoder.conv_blocks.0.res.2.conv1.weight": (512, 512, 3, 3),
    "decoder.conv_blocks.0.attn.2.v.weight": (512, 512, 1, 1),
    "decoder.conv_blocks.0.upsample.conv.weight": (512, 512, 3, 3),
    "decoder.conv_blocks.1.res.0.nin_shortcut.weight": (256, 512, 1, 1),
    "decoder.conv_blocks.4.res.2.conv2.weight": (128, 128, 3, 3),
    "decoder.conv_out.weight": (3, 128, 3, 3),
}


def test_llamagen_modules_reproduce_the_published_key_layout() -> None:
    from vtbench.tokenizers.llamagen import LlamaGenVQModel

    with torch.device("meta"):  # shapes only
        ds16 = {k: tuple(v.shape) for k, v in LlamaGenVQModel("ds16").state_dict().items()}
        ds8 = LlamaGenVQModel("ds8").state_dict()
    assert {k: ds16[k] for k in LLAMAGEN_DS16_LAYOUT} == LLAMAGEN_DS16_LAYOUT
    assert (len(ds16) + 1, sum(math.prod(s) for s in ds16.values())) == (344, 71_883_403)  # + quantize.codebook_used
    assert "encoder.conv_blocks.4.downsample.conv.weight" not in ds16 and "decoder.conv_blocks.4.upsample.conv.weight" not in ds16
    assert (len(ds8) + 1, sum(v.numel() for v in ds8.values())) == (300, 70_109_835)
    from vtbench import weights

    assert weights.get("llamagen-vq-ds16-c2i").url == "https://huggingface.co/FoundationVision/LlamaGen/resolve/main/vq_ds16_c2i.pt"
    assert weights.get("llamagen-vq-ds16-t2i").url == "https://huggingface.co/peizesun/llamagen_t2i/resolve/main/vq_ds16_t2i.pt"


def test_llamagen_checkpoint_through_the_weights_store_and_the_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WeightsUnavailableError, match=r"vtbench weights fetch llamagen-vq-ds16-c2i"):
        create_tokenizer("llamagen-vq-ds16-c2i")
    checkpoint = make_llamagen_checkpoint(tmp_path / "vq_ds16_c2i.pt")
    monkeypatch.setenv("VTBENCH_WEIGHTS_LLAMAGEN_VQ_DS16_C2I", str(checkpoint))
    tokenizer = create_tokenizer("llamagen-vq-ds16-c2i")
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    recon, tokens = tokenizer.reconstruct(images)
    assert tokens.indices.shape == (2, 4, 4) and tokens.counts.tolist() == [16, 16] and tokens.bits.tolist() == [16 * 6.0] * 2
    model = tokenizer.model
    with torch.no_grad():  # nearest entry by cosine similarity = the L2-normalised distance argmin
        codes = model.quant_conv(model.encoder(images * 2 - 1))
        cosine = torch.einsum("nchw,kc->nhwk", torch.nn.functional.normalize(codes, dim=1),
                              torch.nn.functional.normalize(model.quantize.embedding.weight, dim=1))  # fmt: skip
    assert torch.equal(tokens.indices, cosine.argmax(dim=-1))
    with torch.no_grad():  # decoded from the ids through the normalised codebook
        codes = torch.nn.functional.normalize(model.quantize.embedding.weight, dim=1)[tokens.indices].permute(0, 3, 1, 2)
        expected = (model.decoder(model.post_quant_conv(codes)) + 1) / 2
    torch.testing.assert_close(recon, expected)
    assert torch.equal(recon, tokenizer.reconstruct(images)[0])
    record = evaluate(RunConfig("llamagen-vq-ds16-c2i", "samples", metrics=["psnr", "codebook-usage"], limit=2, num_workers=0,
                                preprocessing=Preprocessing(64)), tmp_path / "out")  # fmt: skip
    assert record.subject.info["extra"]["weights_sha256"] == weights_sha(checkpoint)
    assert record.value("tokens") == 16 and 0 < record.value("codebook-usage") <= 1
    assert tuple(record.subject.info["token_grid"]) == (16, 16)  # at the native 256


def weights_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_llamagen_refuses_a_checkpoint_of_another_layout(tmp_path: Path) -> None:
    torch.save({"model": {"encoder.conv_in.weight": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a LlamaGen VQ checkpoint"):
        create_tokenizer("llamagen-vq-ds16-c2i", weights=str(tmp_path / "other.pt"))


@pytest.mark.parametrize(("preset", "model_class", "model_type", "size"), [
    ("janus-pro-1b-vq", "JanusVQVAE", "janus", 8),
    ("emu3-vq", "Emu3VQVAE", "emu3", 16),
])  # fmt: skip
def test_transformers_vq_from_a_multimodal_checkpoint_in_the_hub_cache(preset: str, model_class: str, model_type: str, size: int) -> None:
    from weights_factory import save_multimodal_checkpoint, tiny_transformers_vq

    model, vq_config = tiny_transformers_vq(model_class)
    save_multimodal_checkpoint(hub_snapshot(TOKENIZERS.get(preset).defaults["repo"]), model_type, model, vq_config)
    tokenizer = create_tokenizer(preset)
    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    recon, tokens = tokenizer.reconstruct(images)
    x = images * 2 - 1
    with torch.no_grad():
        if model_class == "JanusVQVAE":
            ids = model.encode(x).image_tokens.reshape(2, -1)
            expected = model.decode(ids)
        else:
            ids = torch.stack(list(model.encode(x, image_sizes=torch.tensor([[size, size]] * 2)).image_tokens))
            expected = model.decode(ids)
    assert torch.equal(tokens.indices.reshape(2, -1), ids.reshape(2, -1))
    torch.testing.assert_close(recon, (expected + 1) / 2)
    assert tokens.counts.tolist() == [(size // 2) ** 2] * 2 and tokens.bits.tolist() == [(size // 2) ** 2 * 6.0] * 2
    assert tokenizer.info.codebook_size == 64 and tokenizer.info.extra["library"].startswith("transformers")


def test_janus_refuses_other_sizes_and_chameleon_cannot_decode() -> None:
    with pytest.raises(ValueError, match="no decoder"):
        create_tokenizer("janus-pro-1b-vq", model_class="ChameleonVQVAE")
    with pytest.raises(WeightsUnavailableError, match="hf download deepseek-community/Janus-Pro-7B"):
        create_tokenizer("janus-pro-7b-vq")


VAR_LAYOUT = {  # key -> shape in the published vae_ch160v4096z32.pth, from VAR's basic_vae.py / quant.py
    "encoder.conv_in.weight": (160, 3, 3, 3),
    "encoder.down.2.block.0.nin_shortcut.weight": (320, 160, 1, 1),
    "encoder.down.4.attn.0.qkv.weight": (1920, 640, 1, 1),
    "encoder.mid.attn_1.norm.weight": (640,),
    "encoder.conv_out.weight": (32, 640, 3, 3),
    "quant_conv.weight": (32, 32, 3, 3),
    "quantize.embedding.weight": (4096, 32),
    "quantize.quant_resi.qresi_ls.3.weight": (32, 32, 3, 3),
    "decoder.conv_in.weight": (640, 32, 3, 3),
    "decoder.up.4.attn.2.qkv.weight": (1920, 640, 1, 1),
    "decoder.up.4.upsample.conv.weight": (640, 640, 3, 3),
    "decoder.up.3.block.0.conv1.weight": (320, 640, 3, 3),
    "decoder.conv_out.weight": (3, 160, 3, 3),
}


def test_var_modules_reproduce_the_published_key_layout() -> None:
    from vtbench.tokenizers.var import VarVQVAE, phi_for_scales

    with torch.device("meta"):  # shapes only
        state = {k: tuple(v.shape) for k, v in VarVQVAE().state_dict().items()}
    assert {k: state[k] for k in VAR_LAYOUT} == VAR_LAYOUT
    assert (len(state) + 1, sum(math.prod(s) for s in state.values())) == (324, 108_948_355)  # + quantize.ema_vocab_hit_SV
    assert "decoder.up.0.upsample.conv.weight" not in state and "encoder.down.4.downsample.conv.weight" not in state
    assert phi_for_scales(10) == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]  # upstream's float64 tie at scale 7 goes to Phi 3


def test_var_multiscale_tokens_and_per_level_codebook_statistics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.nn.functional as F

    from vtbench.tokenizers.var import PATCH_NUMS, VarVQVAE

    torch.manual_seed(0)
    model = VarVQVAE(vocab_size=64, z_channels=8, ch=32)
    state = {**model.state_dict(), "quantize.ema_vocab_hit_SV": torch.zeros(10, 64)}
    torch.save(state, tmp_path / "vae_ch160v4096z32.pth")
    monkeypatch.setenv("VTBENCH_WEIGHTS_VAR_VQVAE", str(tmp_path / "vae_ch160v4096z32.pth"))
    tokenizer = create_tokenizer("var-vqvae-256")
    images = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    recon, tokens = tokenizer.reconstruct(images)
    assert tokens.indices.shape == (1, 680) and tokens.level_sizes == tuple(p * p for p in PATCH_NUMS[256])
    with torch.no_grad():  # upstream's loop, written out: f_hat accumulates, f_rest shrinks
        f_rest = model.quant_conv(model.encoder(images * 2 - 1))
        f_hat, expected = torch.zeros_like(f_rest), []
        for si, pn in enumerate(PATCH_NUMS[256]):
            z = F.interpolate(f_rest, size=(pn, pn), mode="area") if si != 9 else f_rest
            d = torch.cdist(z.permute(0, 2, 3, 1).reshape(-1, 8), model.quantize.embedding.weight)
            idx = d.argmin(dim=1)
            h = model.quantize.embedding(idx).reshape(1, pn, pn, 8).permute(0, 3, 1, 2)
            h = F.interpolate(h, size=(16, 16), mode="bicubic") if si != 9 else h
            h = model.quantize.quant_resi.qresi_ls[[0, 0, 1, 1, 1, 2, 2, 3, 3, 3][si]](h)
            f_hat, f_rest = f_hat + h, f_rest - h
            expected.append(idx)
        reference = (model.decoder(model.post_quant_conv(f_hat)).clamp(-1, 1) + 1) / 2
    assert torch.equal(tokens.indices[0], torch.cat(expected))
    torch.testing.assert_close(recon, reference, rtol=0, atol=1e-4)  # summation order only; far below one 8-bit level
    assert tokens.bits.tolist() == [680 * 6.0]
    with pytest.raises(ValueError, match="encodes 256x256"):
        tokenizer.encode(torch.rand(1, 3, 128, 128))
    from vtbench.metrics import MetricBatch, create_metric

    metric = create_metric("codebook-usage")
    metric.update(MetricBatch(["a"], images, recon, tokens=tokens))
    per_level = metric.details()["per_level"]
    assert [row["ids_per_image"] for row in per_level] == [p * p for p in PATCH_NUMS[256]]
    assert per_level[0]["codes_used"] == 1 and per_level[-1]["codes_used"] == len(torch.unique(expected[-1]))


OPEN_MAGVIT2_256_L_LAYOUT = {  # key -> shape in imagenet_256_L.ckpt, from SEED-Voken's improved_model.py
    "encoder.conv_in.weight": (128, 3, 3, 3),
    "encoder.down.2.block.0.nin_shortcut.weight": (256, 128, 1, 1),
    "encoder.down.2.downsample.weight": (256, 256, 3, 3),
    "encoder.mid_block.3.conv2.weight": (512, 512, 3, 3),
    "encoder.conv_out.weight": (18, 512, 1, 1),
    "decoder.conv_in.weight": (512, 18, 3, 3),
    "decoder.up.4.upsample.conv1.weight": (2048, 512, 3, 3),
    "decoder.up.3.block.0.nin_shortcut.weight": (256, 512, 1, 1),
    "decoder.up.1.upsample.conv1.weight": (512, 128, 3, 3),
    "decoder.adaptive.0.gamma.weight": (128, 18),
    "decoder.adaptive.3.beta.weight": (512, 18),
    "decoder.conv_out.weight": (3, 128, 3, 3),
}


def test_open_magvit2_modules_reproduce_the_published_key_layout() -> None:
    from vtbench.tokenizers.open_magvit2 import LFQAutoencoder

    with torch.device("meta"):  # shapes only
        state = {k: tuple(v.shape) for k, v in LFQAutoencoder().state_dict().items()}
    assert {k: state[k] for k in OPEN_MAGVIT2_256_L_LAYOUT} == OPEN_MAGVIT2_256_L_LAYOUT
    assert (len(state), sum(math.prod(s) for s in state.values())) == (339, 115_127_829)
    assert "encoder.conv_in.bias" not in state and "encoder.down.0.block.0.conv1.bias" not in state  # bias-free convolutions


def make_open_magvit2_checkpoint(path: Path, adaptive: bool = True) -> tuple[Path, torch.nn.Module]:
    """A small LFQ autoencoder saved like the published files: raw weights plus different EMA
    copies under ``model_ema.<name without dots>``; returns the model holding the EMA weights."""
    from vtbench.tokenizers.open_magvit2 import LFQAutoencoder

    torch.manual_seed(0)
    raw, ema = (LFQAutoencoder(32, (1, 2), 1, 6, adaptive) for _ in range(2))
    state = {**raw.state_dict(), **{"model_ema." + k.replace(".", ""): v for k, v in ema.state_dict().items()}}
    state |= {"model_ema.decay": torch.tensor(0.999), "model_ema.num_updates": torch.tensor(10, dtype=torch.int32)}
    torch.save({"state_dict": state}, path)
    return path, ema.eval()


def test_open_magvit2_lfq_codes_ema_weights_and_bit_order(tmp_path: Path) -> None:
    path, ema = make_open_magvit2_checkpoint(tmp_path / "imagenet_256_L.ckpt")
    tokenizer = create_tokenizer("open-magvit2-256-l", weights=str(path))
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    recon, tokens = tokenizer.reconstruct(images)
    with torch.no_grad():
        z = ema.encoder(images * 2 - 1)
        signs = torch.where(z > 0, 1.0, -1.0)
        expected = (ema.decoder(signs).clamp(-1, 1) + 1) / 2
    lsb_first = sum((z[:, d] > 0).long() << d for d in range(6))
    assert torch.equal(tokens.indices, lsb_first) and tokens.codebook_size == 64
    torch.testing.assert_close(recon, expected)  # decoded from the ids alone, with the EMA weights
    assert tokens.bits.tolist() == [256 * 6.0] * 2 and tokenizer.info.quantizer == "lfq"  # 16x16 ids of 6 bits
    x = torch.randn(1, 64, 3, 3)  # depth-to-space in DCR order, against pixel_shuffle on regrouped channels
    upsampler = ema.decoder.up[1].upsample
    with torch.no_grad():
        dcr = torch.nn.functional.pixel_shuffle(upsampler.conv1(x).view(1, 4, 64, 3, 3).transpose(1, 2).reshape(1, 256, 3, 3), 2)
        torch.testing.assert_close(upsampler(x), dcr)
    first_release, _ = make_open_magvit2_checkpoint(tmp_path / "imagenet_256_B.ckpt", adaptive=False)
    old = create_tokenizer("open-magvit2-256-b", weights=str(first_release), ema=False)
    with torch.no_grad():
        z_old = old.model.encoder(images * 2 - 1)
    assert torch.equal(old.encode(images).indices, sum((z_old[:, d] > 0).long() << (5 - d) for d in range(6)))  # MSB first


def test_open_magvit2_per_bit_statistics_through_the_runner(tmp_path: Path) -> None:
    path, _ = make_open_magvit2_checkpoint(tmp_path / "imagenet_256_L.ckpt")
    config = RunConfig("open-magvit2-256-l", "samples", metrics=["codebook-entropy"], tokenizer_options={"weights": str(path)}, limit=2,
                       num_workers=0, preprocessing=Preprocessing(32))  # fmt: skip
    record = evaluate(config, tmp_path / "out")
    per_bit = record.details("codebook-entropy")["per_bit"]
    assert len(per_bit["p_one"]) == 6 and all(0 <= p <= 1 for p in per_bit["p_one"])
    assert record.value("codebook-entropy") <= 6 and record.value("tokens") == 256


def test_bsq_vit_codes_patches_and_ema_weights(tmp_path: Path) -> None:
    import argparse

    import torch.nn.functional as F

    from vtbench.tokenizers.bsq_vit import BSQViTModel

    torch.manual_seed(0)
    raw, ema = BSQViTModel(32, 8, 64, 1, 2, 6), BSQViTModel(32, 8, 64, 1, 2, 6).eval()
    torch.save({  # as the training script saves it: DDP prefixes, EMA copy, pickled config objects
        "iter": 5, "state_dict": {f"module.{k}": v for k, v in raw.state_dict().items()},
        "ema_state_dict": {f"module.module.{k}": v for k, v in [*ema.state_dict().items(), ("quantize.group_basis", torch.ones(1))]},
        "args": argparse.Namespace(model="bsqvit"),
    }, tmp_path / "bsqvit.pt")  # fmt: skip
    tokenizer = create_tokenizer("bsq-vit-b18", weights=str(tmp_path / "bsqvit.pt"), heads=2)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    recon, tokens = tokenizer.reconstruct(images)
    with torch.no_grad():
        patches = F.unfold(images * 2 - 1, kernel_size=8, stride=8).transpose(1, 2)  # (N, 16, 3*8*8), (c, row, col) order
        h = F.normalize(ema.quant_embed(ema.encoder(patches)), dim=-1)
        ids = sum((h[..., d] > 0).long() << (5 - d) for d in range(6))  # channel 0 = top bit
        out = ema.decoder(ema.post_quant_embed(torch.where(h > 0, 1.0, -1.0) / math.sqrt(6)))
        expected = (F.fold(out.transpose(1, 2), (32, 32), kernel_size=8, stride=8).clamp(-1, 1) + 1) / 2
    assert torch.equal(tokens.indices, ids) and tokens.codebook_size == 64 and tokens.counts.tolist() == [16, 16]
    torch.testing.assert_close(recon, expected)
    assert tokenizer.info.native_resolution == 32 and tokenizer.info.extra["ema_weights"]
    with pytest.raises(WeightsUnavailableError, match="by hand from https://github.com/zhaoyue-zephyrus/bsq-vit"):
        create_tokenizer("bsq-vit-b36")


def test_titok_modules_reproduce_the_published_parameter_counts() -> None:
    from vtbench.tokenizers.titok import TiTokModel

    with torch.device("meta"):  # shapes only: no memory for the hundreds of millions of parameters
        counts = {
            name: sum(v.numel() for v in TiTokModel(*config).state_dict().values())
            for name, config in {
                "s128": ("small", "small", 128, 4096, 12, True, True),
                "b64": ("base", "base", 64, 4096, 12, True, True),
                "bl64": ("base", "large", 64, 8192, 64, False, False),
                "sl256": ("small", "large", 256, 8192, 64, False, False),
            }.items()
        }
        pixel = TiTokModel("small", "small", 128, 4096, 12, True, True).state_dict()
    assert counts == {"s128": 83_674_639, "b64": 204_814_095, "bl64": 390_016_148, "sl256": 330_260_884}  # = the hub file sizes / 4
    assert tuple(pixel["pixel_decoder.up.3.block.0.nin_shortcut.weight"].shape) == (256, 256, 1, 1)  # applied to the block's output
    assert tuple(pixel["decoder.ffn.2.weight"].shape) == (1024, 1024, 1, 1) and tuple(pixel["latent_tokens"].shape) == (128, 512)


@pytest.mark.parametrize(("preset", "legacy"), [("titok-s128", True), ("titok-sl256-vq", False)])
def test_titok_from_the_hub_cache_two_stage_and_single_stage(preset: str, legacy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from safetensors.torch import save_file

    from vtbench.tokenizers import titok

    monkeypatch.setitem(titok.VIT_SIZES, "tiny", (64, 1, 2))
    tokens, codes, size = (8, 32, 6) if legacy else (16, 64, 8)
    torch.manual_seed(0)
    model = titok.TiTokModel("tiny", "tiny", tokens, codes, size, legacy, legacy).eval()
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=0.05)
    folder = hub_snapshot(TOKENIZERS.get(preset).defaults["repo"])
    vq = {
        "vit_enc_model_size": "tiny",
        "vit_dec_model_size": "tiny",
        "vit_enc_patch_size": 16,
        "vit_dec_patch_size": 16,
        "num_latent_tokens": tokens,
        "codebook_size": codes,
        "token_size": size,
        "use_l2_norm": legacy,
        "commitment_cost": 0.25,
    }
    if not legacy:
        vq |= {"finetune_decoder": False, "is_legacy": False}
    (folder / "config.json").write_text(json.dumps({"model": {"vq_model": vq}, "dataset": {"preprocessing": {"crop_size": 256}}}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))  # fmt: skip

    tokenizer = create_tokenizer(preset)
    images = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    recon, encoded = tokenizer.reconstruct(images)
    with torch.no_grad():
        z = model.encoder(images, model.latent_tokens)[:, :, 0].transpose(1, 2)  # (1, tokens, size)
        codebook = model.quantize.embedding.weight
        if legacy:  # L2-normalised codes: nearest = highest cosine similarity
            ids = (torch.nn.functional.normalize(z, dim=-1) @ torch.nn.functional.normalize(codebook, dim=-1).T).argmax(-1)
        else:
            ids = torch.cdist(z, codebook[None]).argmin(-1)
    assert torch.equal(encoded.indices, ids) and encoded.counts.tolist() == [tokens]
    assert encoded.bits.tolist() == [tokens * math.log2(codes)] and recon.shape == images.shape
    with torch.no_grad():
        entries = torch.nn.functional.normalize(codebook, dim=-1) if legacy else codebook
        out = model.decoder(entries[ids].transpose(1, 2).unsqueeze(2))  # (1, size, 1, tokens)
        if legacy:  # softmax over the 1024 MaskGIT codes weights their vectors, then the pixel decoder
            out = model.pixel_decoder(torch.einsum("nchw,cd->ndhw", out.softmax(1), model.pixel_quantize.embedding.weight))
    torch.testing.assert_close(recon, out)
    assert hasattr(tokenizer.model, "pixel_decoder") == legacy and torch.equal(recon, tokenizer.reconstruct(images)[0])


def test_compile_is_recorded_and_refused_for_tokenizers_without_a_network(tmp_path: Path) -> None:
    from vtbench.errors import VtbenchError

    with pytest.raises(VtbenchError, match="'jpeg-q50' has no network"):
        evaluate(RunConfig("jpeg-q50", "samples", metrics=["psnr"], limit=1, compile=True, num_workers=0), tmp_path)


def test_mixed_precision_is_recorded_and_close_to_float32(hub_models: dict[str, torch.nn.Module]) -> None:
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    full, _ = create_tokenizer("sd-vae-ft-mse").reconstruct(images)
    half_tokenizer = create_tokenizer("sd-vae-ft-mse", dtype="bfloat16")
    half, tokens = half_tokenizer.reconstruct(images)
    assert half.dtype == torch.float32 and half_tokenizer.options()["dtype"] == "bfloat16"
    assert tokens.bits.tolist() == [256 * 4 * 16.0]  # bfloat16 latents cost 16 bits each
    assert (half - full).abs().max() < 0.05


@pytest.mark.parametrize("preset", ["qwen-image-vae", "wan21-vae"])
def test_one_frame_video_vaes_with_per_channel_latent_statistics(preset: str) -> None:
    model = install_in_hub_cache(preset)
    tokenizer = create_tokenizer(preset)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    recon, tokens = tokenizer.reconstruct(images)
    with torch.no_grad():
        latents = model.encode(images[:, :, None] * 2 - 1).latent_dist.mode()  # (N, C, frames=1, h, w)
        expected = (model.decode(latents).sample[:, :, 0] + 1) / 2
    mean, std = torch.tensor([0.1, 0.2, 0.3, 0.4]).view(1, 4, 1, 1, 1), torch.tensor([1.5, 2.0, 2.5, 3.0]).view(1, 4, 1, 1, 1)
    torch.testing.assert_close(tokens.data, (latents - mean) / std)  # as the Qwen-Image / Wan pipelines normalise
    torch.testing.assert_close(recon, expected, rtol=1e-4, atol=1e-5)
    assert tokens.counts.tolist() == [256, 256] and tokenizer.info.extra["latent_normalisation"].startswith("per-channel")


def test_chameleon_vqgan_encodes_like_transformers_and_decodes(tmp_path: Path) -> None:
    import transformers

    from vtbench.tokenizers.chameleon import ChameleonVQGAN

    with torch.device("meta"):
        published = ChameleonVQGAN().state_dict()
    assert (len(published), sum(v.numel() for v in published.values())) == (293, 68_718_467)  # Meta's vqgan.ckpt layout
    torch.manual_seed(0)
    config = transformers.ChameleonVQVAEConfig(embed_dim=8, num_embeddings=64, latent_channels=32, base_channels=32,
                                               channel_multiplier=[1, 1, 2, 2, 4], num_res_blocks=2, attn_resolutions=[])  # fmt: skip
    reference = transformers.ChameleonVQVAE(config).eval()  # transformers keeps the original names, encoder side only
    ours = ChameleonVQGAN(64, 8, 32, 32)
    state = {**ours.state_dict(), **{k: v for k, v in reference.state_dict().items() if k in ours.state_dict()}}
    assert {k for k in reference.state_dict() if k in ours.state_dict()} == {k for k in state if not k.startswith("decoder.")}
    torch.save({"state_dict": {**state, "loss.discriminator.weight": torch.zeros(1)}}, tmp_path / "vqgan.ckpt")
    tokenizer = create_tokenizer("chameleon-vqgan", weights=str(tmp_path / "vqgan.ckpt"))
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    recon, tokens = tokenizer.reconstruct(images)
    with torch.no_grad():
        expected_ids = reference.encode(images * 2 - 1).image_tokens.reshape(2, 4, 4)
    assert torch.equal(tokens.indices, expected_ids) and tokens.bits.tolist() == [16 * 6.0] * 2
    loaded = tokenizer.model
    with torch.no_grad():  # the raw codebook (no normalisation), then post_quant_conv and the decoder, clamped
        codes = loaded.quantize.embedding.weight[expected_ids].permute(0, 3, 1, 2)
        expected = (loaded.decoder(loaded.post_quant_conv(codes)).clamp(-1, 1) + 1) / 2
    torch.testing.assert_close(recon, expected)


@pytest.mark.parametrize("sharded", [False, True])
def test_janus_vq_from_deepseeks_release_reads_only_the_gen_vision_model(sharded: bool, tmp_path: Path) -> None:
    import json

    from vtbench.tokenizers.llamagen import LlamaGenVQModel

    torch.manual_seed(0)
    vq = LlamaGenVQModel("ds16", codebook_size=64, codebook_dim=8, ch=32, z_channels=32)
    tensors = {f"gen_vision_model.{k}": v.to(torch.bfloat16) for k, v in vq.state_dict().items()}  # shipped in bf16
    tensors["gen_vision_model.quantize.codebook_used"] = torch.zeros(65536)
    folder = hub_snapshot("deepseek-ai/Janus-Pro-7B" if sharded else "deepseek-ai/Janus-Pro-1B")
    (folder / "config.json").write_text(json.dumps({"model_type": "multi_modality"}))
    if sharded:  # the language model in one shard, the image VQ in the other, and the index
        torch.save({"language_model.lm_head.weight": torch.zeros(2, 2)}, folder / "pytorch_model-00001-of-00002.bin")
        torch.save(tensors, folder / "pytorch_model-00002-of-00002.bin")
        weight_map = dict.fromkeys(tensors, "pytorch_model-00002-of-00002.bin")
        weight_map["language_model.lm_head.weight"] = "pytorch_model-00001-of-00002.bin"
        (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    else:
        torch.save({**tensors, "language_model.lm_head.weight": torch.zeros(2, 2)}, folder / "pytorch_model.bin")
    tokenizer = create_tokenizer("janus-pro-7b-vq-original" if sharded else "janus-pro-1b-vq-original")
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    _, tokens = tokenizer.reconstruct(images)
    expected = {k: v.to(torch.bfloat16).float() for k, v in vq.state_dict().items()}
    assert all(torch.equal(tokenizer.model.state_dict()[k], v) for k, v in expected.items())
    assert tokens.indices.shape == (1, 4, 4) and tokenizer.info.source.startswith("hf://deepseek-ai/")
    assert tokenizer.info.tokens_per_image == 576  # 24x24 at Janus's native 384


@pytest.mark.parametrize(("preset", "variant"), [("flux2-vae", None), ("movq-kandinsky22", "VQModel-spatial"), ("rae-dinov2-b", None)])
def test_more_diffusers_classes_match_the_library(preset: str, variant: str | None) -> None:
    model = install_in_hub_cache(preset, variant)
    tokenizer = create_tokenizer(preset)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    recon, tokens = tokenizer.reconstruct(images)
    with torch.no_grad():
        if preset == "rae-dinov2-b":  # [0, 1] in and out; the model normalises its latents itself
            expected = model.decode(model.encode(images).latent).sample
        elif variant == "VQModel-spatial":
            expected = (model.decode(model.encode(images * 2 - 1).latents).sample + 1) / 2
        else:
            expected = (model.decode(model.encode(images * 2 - 1).latent_dist.mode()).sample + 1) / 2
    torch.testing.assert_close(recon, expected, rtol=1e-4, atol=1e-4)
    if preset == "rae-dinov2-b":
        assert tokenizer.info.input_range == (0.0, 1.0) and tokenizer.info.extra["latent_normalisation"] == "inside the model"
        assert tokens.counts.tolist() == [4, 4]  # 2x2 latent positions of 64 channels
    if variant:
        assert tokens.indices.shape == (2, 16, 16) and tokenizer.info.family == "discrete"


def test_any_diffusers_class_by_name_from_a_local_folder(tmp_path: Path) -> None:
    model = tiny_diffusers_model("AutoencoderKLCosmos").eval()
    model.save_pretrained(tmp_path / "cosmos")
    tokenizer = create_tokenizer("diffusers", model_class="AutoencoderKLCosmos", temporal=True, weights=str(tmp_path / "cosmos"))
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    recon, tokens = tokenizer.reconstruct(images)
    with torch.no_grad():
        expected = (model.decode(model.encode(images[:, :, None] * 2 - 1).latent_dist.mode()).sample[:, :, 0] + 1) / 2
    torch.testing.assert_close(recon, expected, rtol=1e-4, atol=1e-4)
    assert tokenizer.info.extra["latent_normalisation"] == "shift_factor/scaling_factor"  # its per-frame statistics are not per channel
    with pytest.raises(ValueError, match="repo=ORG/NAME"):
        create_tokenizer("diffusers")


MASKBIT_14BIT_LAYOUT = {  # from the release's ConvVQModel (markweberdev/maskbit, maskbit_tokenizer_14bit.bin)
    "encoder.conv_in.weight": (128, 3, 3, 3),
    "encoder.down.2.res_blocks.0.nin_shortcut.weight": (256, 256, 1, 1),
    "encoder.down.4.res_blocks.0.nin_shortcut.weight": (512, 512, 1, 1),
    "encoder.down.3.down_conv.weight": (256, 256, 3, 3),
    "encoder.conv_out.weight": (14, 512, 1, 1),
    "decoder.conv_in.weight": (512, 14, 3, 3),
    "decoder.up.1.res_blocks.0.nin_shortcut.weight": (256, 256, 1, 1),
    "decoder.up.3.res_blocks.0.nin_shortcut.weight": (128, 128, 1, 1),
    "decoder.up.0.upsample_conv.weight": (512, 512, 3, 3),
    "decoder.conv_out.weight": (3, 128, 3, 3),
    "quantize.bits_to_indices": (14,),
    "quantize.codebook": (16384, 14),
}


def test_maskbit_modules_reproduce_the_published_key_layout() -> None:
    from vtbench.tokenizers.maskbit import MaskBitTokenizerModel

    with torch.device("meta"):
        model = MaskBitTokenizerModel(bits=14)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: state[k] for k in MASKBIT_14BIT_LAYOUT} == MASKBIT_14BIT_LAYOUT
    assert len(state) == 177 and sum(p.numel() for p in model.parameters()) == 54_489_489  # the release's 54.49M
    assert "encoder.down.0.res_blocks.0.conv1.bias" not in state and "encoder.down.4.down_conv.weight" not in state
    assert "decoder.up.4.upsample_conv.weight" not in state  # up.0 is the deepest level, up.4 the last


def make_maskbit_checkpoint(path: Path, bits: int = 6) -> tuple[Path, torch.nn.Module]:
    """A small MaskBiT tokenizer saved as the release saves it: a flat state dict with the quantizer's buffers."""
    from vtbench.tokenizers.maskbit import MaskBitTokenizerModel

    torch.manual_seed(0)
    model = MaskBitTokenizerModel(32, (1, 2), 1, bits)
    with torch.no_grad():
        for parameter in model.parameters():  # non-zero norms and biases, so a wrong layout shows in the outputs
            parameter.add_(0.05 * torch.randn_like(parameter))
    torch.save(model.state_dict(), path)
    return path, model.eval()


def test_maskbit_bit_tokens_shortcut_padding_and_strict_loading(tmp_path: Path) -> None:
    import torch.nn.functional as F

    path, model = make_maskbit_checkpoint(tmp_path / "maskbit_tokenizer_6bit.bin")
    tokenizer = create_tokenizer("maskbit-14bit", weights=str(path))
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    recon, tokens = tokenizer.reconstruct(images)
    with torch.no_grad():
        z = model.encoder(images)  # [0, 1] in
        expected = model.decoder(torch.where(z > 0, 1.0, -1.0)).clamp(0, 1)
    assert torch.equal(tokens.indices, sum((z[:, c] > 0).long() << c for c in range(6)))  # channel 0 = the lowest bit
    assert tokens.indices.shape == (2, 16, 16) and tokens.codebook_size == 64 and tokens.bits.tolist() == [256 * 6.0] * 2
    torch.testing.assert_close(recon, expected)
    block, x = model.encoder.down[1].res_blocks[0], torch.randn(1, 32, 8, 8)  # 32 -> 64 channels: the shortcut is of the output
    with torch.no_grad():
        h = block.conv2(F.silu(block.norm2(block.conv1(F.silu(block.norm1(x))))))
        torch.testing.assert_close(block(x), h + block.nin_shortcut(h))
        down = model.encoder.down[0].down_conv  # TensorFlow SAME: the extra pixel of padding right and bottom
        torch.testing.assert_close(down(x), F.conv2d(F.pad(x, (0, 1, 0, 1)), down.weight, down.bias, stride=2))
    assert tokenizer.info.extra["bits_per_token"] == 6 and tokenizer.info.input_range == (0.0, 1.0)
    state = torch.load(path, weights_only=True)
    del state["decoder.conv_out.bias"]
    torch.save({**state, "encoder.extra.weight": torch.zeros(1)}, tmp_path / "broken.bin")
    with pytest.raises(ValueError, match=r"(?s)broken.bin: does not match the MaskBiT layout.*decoder.conv_out.bias.*encoder.extra.weight"):
        create_tokenizer("maskbit-14bit", weights=str(tmp_path / "broken.bin"))
    metrics = ["codebook-entropy", "code-entropy-n2"]
    config = RunConfig("maskbit-12bit", "samples", metrics=metrics, tokenizer_options={"weights": str(path)}, limit=2, num_workers=0,
                       preprocessing=Preprocessing(32))  # fmt: skip
    record = evaluate(config, tmp_path / "out")  # bit tokens: per-bit statistics through the codebook metrics
    assert len(record.details("codebook-entropy")["per_bit"]["p_one"]) == 6
    assert 0 <= record.value("code-entropy-n2") <= 6


def test_ibq_modules_reproduce_the_published_key_layout() -> None:
    from vtbench.tokenizers.ibq import IBQVQGAN

    with torch.device("meta"):
        model = IBQVQGAN(16384)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(state) == 543  # SEED-Voken's IBQ: taming VQGAN, 4/5 blocks per level, attention at the deepest level
    assert sum(p.numel() for p in model.encoder.parameters()) == 46_752_256
    assert sum(p.numel() for p in model.decoder.parameters()) == 59_903_875
    layout = {"encoder.down.2.block.0.nin_shortcut.weight": (256, 128, 1, 1), "encoder.down.4.attn.3.q.weight": (512, 512, 1, 1),
              "encoder.conv_out.weight": (256, 512, 3, 3), "decoder.up.4.attn.4.proj_out.weight": (512, 512, 1, 1),
              "decoder.up.1.upsample.conv.weight": (128, 128, 3, 3), "quantize.embedding.weight": (16384, 256),
              "quant_conv.weight": (256, 256, 1, 1), "post_quant_conv.weight": (256, 256, 1, 1)}  # fmt: skip
    assert {k: state[k] for k in layout} == layout


def make_ibq_checkpoint(path: Path, with_ema: bool = True) -> tuple[Path, torch.nn.Module, torch.nn.Module]:
    """A small IBQ VQGAN saved like the release: raw weights plus different EMA copies of every one."""
    from vtbench.tokenizers.ibq import IBQVQGAN

    torch.manual_seed(0)
    raw, ema = IBQVQGAN(64, 8, 16, 32, 1), IBQVQGAN(64, 8, 16, 32, 1)
    with torch.no_grad():  # codes of very different norms: the dot-product choice differs from the nearest code
        ema.quantize.embedding.weight.mul_(torch.linspace(0.2, 3.0, 64)[:, None])
    state = dict(raw.state_dict())
    if with_ema:
        state |= {"model_ema." + k.replace(".", ""): v for k, v in ema.state_dict().items()}
        state |= {"model_ema.decay": torch.tensor(0.999), "model_ema.num_updates": torch.tensor(-1, dtype=torch.int32)}
    torch.save({"state_dict": state}, path)
    return path, raw.eval(), ema.eval()


def test_ibq_dot_product_codes_and_ema_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vtbench.tokenizers import ibq

    path, raw, ema = make_ibq_checkpoint(tmp_path / "imagenet256_16384.ckpt")
    tokenizer = create_tokenizer("ibq-16384", weights=str(path))
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    recon, tokens = tokenizer.reconstruct(images)
    with torch.no_grad():
        z = ema.quant_conv(ema.encoder(images * 2 - 1)).permute(0, 2, 3, 1)  # the EMA weights, everywhere
        codebook = ema.quantize.embedding.weight
        expected_ids = torch.einsum("bhwd,nd->bhwn", z, codebook).argmax(-1)
        nearest = torch.cdist(z.reshape(-1, 8), codebook).argmin(-1).reshape(expected_ids.shape)
        expected = (ema.decoder(ema.post_quant_conv(codebook[expected_ids].permute(0, 3, 1, 2))).clamp(-1, 1) + 1) / 2
    assert torch.equal(tokens.indices, expected_ids) and not torch.equal(expected_ids, nearest)  # z . e, not the nearest code
    torch.testing.assert_close(recon, expected)
    assert tokens.indices.shape == (2, 2, 2) and tokens.codebook_size == 64 and tokenizer.info.extra["ema_weights"]
    monkeypatch.setattr(ibq, "SCORE_CHUNK", 64 * 3)  # three vectors at a time: the same choice in chunks
    assert torch.equal(tokenizer.encode(images).indices, expected_ids)
    raw_tokenizer = create_tokenizer("ibq-16384", weights=str(path), ema=False)
    with torch.no_grad():
        raw_z = raw.quant_conv(raw.encoder(images * 2 - 1))
    raw_ids = torch.einsum("bdhw,nd->bhwn", raw_z, raw.quantize.embedding.weight).argmax(-1)
    assert torch.equal(raw_tokenizer.encode(images).indices, raw_ids)
    no_ema, _, _ = make_ibq_checkpoint(tmp_path / "no_ema.ckpt", with_ema=False)
    with pytest.raises(ValueError, match="no_ema.ckpt: no EMA copy of 243 weights.*ema=false"):
        create_tokenizer("ibq-16384", weights=str(no_ema))


def test_gigatok_modules_reproduce_the_published_layouts() -> None:
    from vtbench.tokenizers.gigatok import TRANSFORMER_SIZES, GigaTokModel

    expected = {("small", "small"): (531, 129_252_619), ("small", "base"): (639, 218_236_939), ("base", "large"): (963, 597_510_923)}
    for (encoder, decoder), (keys, parameters) in expected.items():  # the releases' S-S, S-B, B-L less the distillation head
        with torch.device("meta"):
            model = GigaTokModel(TRANSFORMER_SIZES[encoder], TRANSFORMER_SIZES[decoder])
        assert (len(model.state_dict()), sum(p.numel() for p in model.parameters())) == (keys, parameters)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    layout = {"s2to1encoder.positional_embedding": (256, 1, 768), "s2to1encoder.latent_token_positional_embedding": (256, 1, 768),
              "s2to1encoder.transformer.11.multihead_attn.in_proj_weight": (2304, 768), "s2to1encoder.conv_out.weight": (256, 768, 1, 1),
              "quant_conv.weight": (8, 256, 1, 1), "quantize.embedding.weight": (16384, 8),
              "s1to2decoder.conv_out.weight": (256, 1024, 3, 3),
              "decoder.adaptive.0.gamma.weight": (512, 256), "decoder.conv_blocks.0.upsample.conv1.weight": (2048, 512, 3, 3),
              "encoder.mid.1.conv2.weight": (512, 512, 3, 3)}  # fmt: skip
    assert {k: state[k] for k in layout} == layout and "encoder.mid.2.conv1.weight" not in state  # no attention in the CNNs


def make_gigatok_checkpoint(path: Path) -> tuple[Path, torch.nn.Module]:
    """A small GigaTok saved like the training script saves it: ``{"model", "ema", "args", ...}``,
    with the distillation head and the codebook-usage buffer the tokenizer does not use."""
    import argparse

    from vtbench.tokenizers.gigatok import GigaTokModel

    torch.manual_seed(0)
    raw, ema = (GigaTokModel((64, 1), (64, 2), codebook_size=64, codebook_dim=8, ch=32, z_channels=32) for _ in range(2))
    with torch.no_grad():
        for parameter in ema.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    extra = {"s1to2decoder.distill_mlp.0.weight": torch.zeros(256, 64), "quantize.codebook_used": torch.zeros(65536)}
    torch.save({"model": {**raw.state_dict(), **extra}, "ema": {**ema.state_dict(), **extra}, "steps": 10,
                "args": argparse.Namespace(image_size=256)}, path)  # fmt: skip
    return path, ema.eval()


def test_gigatok_one_dimensional_tokens_and_the_qformers(tmp_path: Path) -> None:
    import torch.nn.functional as F

    from vtbench.tokenizers.gigatok import multi_level_queries

    path, model = make_gigatok_checkpoint(tmp_path / "VQ_SB256_e200.pt")
    tokenizer = create_tokenizer("gigatok-s-b", weights=str(path))
    images = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(3))
    recon, tokens = tokenizer.reconstruct(images)
    with torch.no_grad():  # the EMA weights; ids of the nearest L2-normalised code, in latent-token order
        z = model.quant_conv(model.s2to1encoder(model.encoder(images * 2 - 1)))[:, :, 0].transpose(1, 2)
        cosine = F.normalize(z, dim=-1) @ F.normalize(model.quantize.embedding.weight, dim=-1).T
        codes = F.normalize(model.quantize.embedding.weight, dim=-1)[cosine.argmax(-1)].transpose(1, 2)[:, :, None]
        expected = (model.decoder(model.s1to2decoder(model.post_quant_conv(codes))).clamp(-1, 1) + 1) / 2
    assert torch.equal(tokens.indices, cosine.argmax(-1)) and tokens.indices.shape == (2, 256) and tokens.codebook_size == 64
    torch.testing.assert_close(recon, expected)
    assert tokenizer.info.token_grid == (256,) and tokenizer.info.extra["encoder"] == (64, 1)
    grid = torch.arange(16 * 16, dtype=torch.float32).reshape(1, 1, 16, 16)  # 1x1, 1x1, 1x2, 2x2, 2x4, ... cells, columns first
    queries = multi_level_queries(grid, 8)[0, :, 0]
    assert queries.shape == (256,) and queries[0] == queries[1] == grid.mean()
    assert queries[2:4].tolist() == [grid[..., :8].mean().item(), grid[..., 8:].mean().item()]
    assert queries[-128:].tolist() == F.avg_pool2d(grid, (2, 1)).flatten().tolist()  # the finest level: 8x16 cells
    half = create_tokenizer("gigatok-s-b", weights=str(path), dtype="bfloat16")  # the network in bfloat16, codes chosen in float32
    assert half.model.quantize.embedding.weight.dtype == torch.float32
    assert (half.encode(images).indices == tokens.indices).float().mean() > 0.9
    with pytest.raises(ValueError, match="fixed at 256x256"):
        tokenizer.encode(torch.rand(1, 3, 128, 128))


def test_infinity_bitwise_vae_reproduces_the_published_layout() -> None:
    from vtbench.tokenizers.infinity import BitwiseVAE

    with torch.device("meta"):
        model = BitwiseVAE(32)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(state) == 268 and sum(p.numel() for p in model.parameters()) == 110_118_051  # infinity_vae_d32's VAE
    assert state["encoder.conv_out.weight"] == (32, 512, 3, 3) and state["decoder.up.0.block.0.nin_shortcut.weight"] == (128, 256, 1, 1)
    assert not any("attn" in k for k in state)  # no attention anywhere, not even in the middle


def make_infinity_checkpoint(path: Path, wrapped: bool = True) -> tuple[Path, torch.nn.Module]:
    """A small bitwise VAE saved as the release saves it: under ``vae`` with its conv/norm
    wrappers in the key names (``.conv.weight``, ``.norm.bias``) and the quantizer's masks."""
    from vtbench.tokenizers.infinity import BitwiseVAE

    torch.manual_seed(0)
    model = BitwiseVAE(bits=6, ch=32, multipliers=(1, 2, 2, 2, 2), blocks=1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    kinds = {name: type(module) for name, module in model.named_modules()}
    state = {}
    for key, value in model.state_dict().items():
        owner, leaf = key.rsplit(".", 1)
        wrapper = {torch.nn.Conv2d: ".conv", torch.nn.GroupNorm: ".norm"}.get(kinds[owner], "") if wrapped else ""
        state[f"{owner}{wrapper}.{leaf}"] = value
    masks = {"quantizer.lfq.mask": 2 ** torch.arange(5, -1, -1), "quantize.lfq.mask": 2 ** torch.arange(5, -1, -1)}
    torch.save({"vae": {**state, **masks}, "optimizer": {"state": {}}, "steps": 1}, path)
    return path, model.eval()


def test_infinity_multi_scale_bits_schedule_and_both_key_forms(tmp_path: Path) -> None:
    from vtbench.tokenizers.infinity import dequantize

    path, model = make_infinity_checkpoint(tmp_path / "infinity_vae_d32.pth")
    tokenizer = create_tokenizer("infinity-vae-d32", weights=str(path))
    images = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(4))
    recon, tokens = tokenizer.reconstruct(images)
    assert tokens.level_sizes == (1, 4, 16, 36, 64, 144, 256) and tokens.indices.shape == (2, 521)  # 7 scales at 256
    assert tokens.bits.tolist() == [521 * 6.0] * 2 and tokens.codebook_size == 64
    with torch.no_grad():
        latent = model.encoder(images * 2 - 1)
    planes = tokens.data
    assert torch.equal(planes[0][:, 0, 0], latent.mean(dim=(2, 3)) > 0)  # the first scale: the signs of the whole latent's mean
    bits = torch.cat([plane.reshape(2, -1, 6) for plane in planes], dim=1)
    assert torch.equal(tokens.indices, sum(bits[..., c].long() << (5 - c) for c in range(6)))  # channel 0 = the top bit
    left = latent - dequantize(planes[:-1], (16, 16))  # the last scale, at full size, codes the signs of what the others left
    assert torch.equal(planes[-1], (left > 0).permute(0, 2, 3, 1))
    with torch.no_grad():
        expected = (model.decoder(dequantize(planes, (16, 16))).clamp(-1, 1) + 1) / 2
    torch.testing.assert_close(recon, expected)
    plain, _ = make_infinity_checkpoint(tmp_path / "plain.pth", wrapped=False)  # plain taming names load the same weights
    assert torch.equal(create_tokenizer("infinity-vae-d32", weights=str(plain)).encode(images).indices, tokens.indices)
    assert create_tokenizer("infinity-vae-d32", weights=str(path), native_resolution=1024).info.tokens_per_image == 10521
    with pytest.raises(ValueError, match="scale schedules for 256x256, 512x512, 1024x1024 images only, got 128x128"):
        tokenizer.encode(torch.rand(1, 3, 128, 128))
