"""Generators that generate: the sampling maths against their reference formulas, LlamaGen's
GPT written to the published checkpoint layout (tiny checkpoints saved as upstream saves
them), KV-cached sampling equal to a full causal pass, and a sample plan that gives sample
*i* the same image whatever the batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from weights_factory import make_llamagen_checkpoint

from conftest import run_cli
from vtbench.generators.llamagen import GPT, GPTConfig, rotary_table
from vtbench.generators.sampling import ClassPlan, filter_logits, guided_logits, sample_rows


def _numpy_filter(logits: np.ndarray, top_k: int, top_p: float) -> np.ndarray:
    """Top-k then top-p as the formulas state them, one row at a time."""
    out = logits.astype(np.float64).copy()
    for row in out:
        if top_k > 0:
            row[row < np.sort(row)[::-1][top_k - 1]] = -np.inf
        if top_p < 1.0:
            order = np.argsort(-row, kind="stable")
            probs = np.exp(row[order] - row[order][0])
            probs /= probs.sum()
            before = np.concatenate([[0.0], np.cumsum(probs)[:-1]])  # mass of the more likely tokens
            row[order[before > top_p]] = -np.inf  # keep a token while the mass before it is within top_p
    return out


@pytest.mark.parametrize("top_k, top_p", [(0, 1.0), (5, 1.0), (0, 0.8), (7, 0.5), (1, 0.9), (0, 0.05)])
def test_top_k_top_p_filtering_matches_the_formula(top_k: int, top_p: float) -> None:
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    ours = filter_logits(logits, top_k, top_p).numpy()
    reference = _numpy_filter(logits.numpy(), top_k, top_p)
    assert np.array_equal(np.isinf(ours), np.isinf(reference))
    assert np.allclose(ours[~np.isinf(ours)], reference[~np.isinf(reference)])
    assert (~np.isinf(ours)).sum(axis=1).min() >= 1


def test_guidance_and_sampling_follow_their_definitions() -> None:
    cond, uncond = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[1.0, 1.0, 0.0]])
    assert guided_logits(cond, uncond, 1.0).tolist() == cond.tolist()
    assert guided_logits(cond, uncond, 3.0).tolist() == [[4.0, -2.0, -3.0]]  # uncond + 3 (cond - uncond)
    # draws follow softmax(logits / T): empirical frequencies over many seeds
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0])
    draws = torch.cat([sample_rows(logits[None], [torch.Generator().manual_seed(s)], temperature=0.7) for s in range(4000)])
    frequencies = torch.bincount(draws, minlength=4).double() / 4000
    assert torch.allclose(frequencies, torch.softmax(logits.double() / 0.7, 0), atol=0.025)
    # a row's token depends on its own generator only, not on the rows beside it
    rows = torch.randn(3, 20)
    together = sample_rows(rows, [torch.Generator().manual_seed(s) for s in (5, 6, 7)])
    alone = [int(sample_rows(rows[i : i + 1], [torch.Generator().manual_seed(s)])) for i, s in enumerate((5, 6, 7))]
    assert together.tolist() == alone
    assert int(sample_rows(logits[None], [torch.Generator()], top_k=1)) == 3


def test_the_class_plan_is_balanced_and_seeded_per_sample() -> None:
    plan = ClassPlan(num_classes=1000, per_class=50, seed=3)
    assert plan.num_samples == 50_000 and [plan.label(i) for i in (0, 1, 999, 1000, 49_999)] == [0, 1, 999, 0, 999]
    assert torch.rand(2, generator=plan.generator(7)).tolist() == torch.rand(2, generator=plan.generator(7)).tolist()
    assert torch.rand(1, generator=plan.generator(7)).item() != torch.rand(1, generator=plan.generator(8)).item()


def test_rotary_table_is_upstreams_2d_layout() -> None:
    table = rotary_table(grid=4, head_dim=16, base=10000.0, prefix=1)
    assert table.shape == (17, 8, 2) and table[0].abs().max() == 0  # the class token: no rotation (zeros, as upstream)
    frequencies = [10000 ** (-2 * i / 8) for i in range(4)]  # head_dim 16: 4 frequencies per axis
    row, column = 2, 3
    angles = [row * f for f in frequencies] + [column * f for f in frequencies]
    position = 1 + row * 4 + column
    assert torch.allclose(table[position, :, 0], torch.tensor(np.cos(angles), dtype=torch.float32), atol=1e-6)
    assert torch.allclose(table[position, :, 1], torch.tensor(np.sin(angles), dtype=torch.float32), atol=1e-6)


PUBLISHED_GPT_B_KEYS = {  # c2i_B_256.pt, under "model": names and shapes of the first layer and the ends
    "cls_embedding.embedding_table.weight": (1001, 768), "tok_embeddings.weight": (16384, 768),
    "layers.0.attention.wqkv.weight": (2304, 768), "layers.0.attention.wo.weight": (768, 768),
    "layers.0.feed_forward.w1.weight": (2048, 768), "layers.0.feed_forward.w3.weight": (2048, 768),
    "layers.0.feed_forward.w2.weight": (768, 2048), "layers.0.attention_norm.weight": (768,),
    "layers.0.ffn_norm.weight": (768,), "norm.weight": (768,), "output.weight": (16384, 768),
}  # fmt: skip


def test_gpt_b_has_the_published_layout() -> None:
    with torch.device("meta"):
        model = GPT(GPTConfig(layers=12, heads=12, dim=768))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: shapes[k] for k in PUBLISHED_GPT_B_KEYS} == PUBLISHED_GPT_B_KEYS
    assert len(shapes) == 2 + 12 * 7 + 2 and sum(v.numel() for v in model.parameters()) == pytest.approx(111e6, rel=0.03)


def _tiny_gpt(seed: int = 0, vocab: int = 64, grid: int = 4) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(layers=2, heads=2, dim=32, vocab_size=vocab, num_classes=10, grid=grid)).eval()
    for parameter in model.parameters():  # upstream zero-initialises the output: give it something to say
        torch.nn.init.normal_(parameter, std=0.3)
    return model


@pytest.mark.parametrize("cfg_scale, cfg_interval", [(1.0, -1), (3.0, -1), (3.0, 4)])
def test_cached_sampling_equals_a_full_causal_pass(cfg_scale: float, cfg_interval: int) -> None:
    """Greedy decoding (top-k 1) with the key/value cache gives the tokens a full pass picks,
    guidance applied to the full pass's logits as upstream applies it."""
    model, labels = _tiny_gpt(), torch.tensor([3, 7])
    generators = [torch.Generator().manual_seed(i) for i in range(2)]
    tokens = model.generate(labels, generators, cfg_scale=cfg_scale, cfg_interval=cfg_interval, top_k=1)
    expected = torch.zeros(2, 0, dtype=torch.long)
    for step in range(16):
        logits = model.logits(labels, expected)[:, -1]
        if cfg_scale != 1.0 and (cfg_interval < 0 or step - 1 <= cfg_interval):
            logits = guided_logits(logits, model.logits(torch.full_like(labels, 10), expected)[:, -1], cfg_scale)
        expected = torch.cat([expected, logits.argmax(dim=-1, keepdim=True)], dim=1)
    assert tokens.tolist() == expected.tolist()


@pytest.fixture(scope="module")
def llamagen_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A tiny GPT saved as LlamaGen's DDP training saves it, and a tiny VQ-16 with its 64 codes."""
    import argparse

    folder = tmp_path_factory.mktemp("llamagen")
    model = _tiny_gpt(vocab=64, grid=16)
    state = {**model.state_dict(), "freqs_cis": torch.zeros(257, 8, 2)}  # older checkpoints carry the table
    torch.save({"model": state, "optimizer": {}, "steps": 10, "args": argparse.Namespace(gpt_model="GPT-B")}, folder / "c2i_B_256.pt")
    make_llamagen_checkpoint(folder / "vq_ds16_c2i.pt")
    return {"VTBENCH_WEIGHTS_LLAMAGEN_C2I_B_256": str(folder / "c2i_B_256.pt"),
            "VTBENCH_WEIGHTS_LLAMAGEN_VQ_DS16_C2I": str(folder / "vq_ds16_c2i.pt")}  # fmt: skip


def test_llamagen_samples_are_the_same_whatever_the_batch(llamagen_files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from vtbench.generators import GENERATORS

    for name, value in llamagen_files.items():
        monkeypatch.setenv(name, value)
    generator = GENERATORS.create("llamagen-c2i-b-256", heads=2, cfg_scale=2.0, top_k=20, num_classes=10, per_class=2)
    assert generator.num_samples == 20 and generator.labels([0, 1, 11]) == [0, 1, 1]
    # the tokens drawn for sample i depend on i alone
    labels, sampling = torch.tensor(generator.labels([0, 1, 2])), generator.sampling
    ids = generator.gpt.generate(labels, [generator.plan.generator(i) for i in (0, 1, 2)], **sampling)
    ids_apart = [generator.gpt.generate(labels[i : i + 1], [generator.plan.generator(i)], **sampling) for i in (0, 1, 2)]
    assert torch.equal(ids, torch.cat(ids_apart)) and not torch.equal(ids[0], ids[1])
    # decoded images agree to float rounding (the decoder's convolutions sum in a batch-dependent order)
    together = generator.samples([0, 1, 2])
    apart = torch.cat([generator.samples([0]), generator.samples([1, 2])])
    assert together.shape == (3, 3, 256, 256) and together.min() >= 0 and together.max() <= 1
    assert torch.allclose(together, apart, atol=1e-4)
    options = generator.options()
    assert options["cfg_scale"] == 2.0 and options["top_k"] == 20 and options["tokenizer"] == "llamagen-vq-ds16-c2i"


def test_llamagen_refuses_a_checkpoint_of_another_layout(tmp_path: Path) -> None:
    from vtbench.generators import GENERATORS

    torch.save({"model": {"something.weight": torch.zeros(2)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a LlamaGen GPT checkpoint"):
        GENERATORS.create("llamagen-c2i-b-256", weights=str(tmp_path / "other.pt"))


def test_a_llamagen_generation_run_through_the_cli(llamagen_files: dict[str, str], tmp_path: Path) -> None:
    import os

    env = {**os.environ, **llamagen_files}
    run_cli("run", "--generator", "llamagen-c2i-b-256:heads=2,num_classes=4,per_class=1,top_k=8", "--reference", "samples",
            "--resolution", "64", "-m", "fd-efficientnet-lite0", "--batch-size", "4", "--save-reconstructions", "--out", tmp_path,
            env=env)  # fmt: skip
    record = json.loads((tmp_path / "llamagen-c2i-b-256__samples.json").read_text())
    assert record["task"] == "generation" and record["samples"]["evaluated"] == 4
    assert record["generator"]["options"]["num_classes"] == 4 and record["metrics"]["fd-efficientnet-lite0"]["value"] > 0
    assert record["generator"]["info"]["to_8bit"] == "rounded to the nearest 8-bit level"
    # the samples, as PNGs and as an ADM batch that scores the same as the generator itself
    with np.load(tmp_path / "llamagen-c2i-b-256__samples.samples.npz") as batch:
        images, labels = batch["arr_0"], batch["arr_1"]
    assert images.shape == (4, 256, 256, 3) and images.dtype == np.uint8 and labels.tolist() == list(range(4))
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "llamagen-c2i-b-256__samples.samples" / "000003.png")), images[3])
    again = tmp_path / "again"
    run_cli("run", "-g", tmp_path / "llamagen-c2i-b-256__samples.samples.npz", "--reference", "samples", "--resolution", "64",
            "-m", "fd-efficientnet-lite0", "--out", again, env=env)  # fmt: skip
    rescored = json.loads(next(again.glob("*.json")).read_text())
    assert rescored["metrics"]["fd-efficientnet-lite0"]["value"] == pytest.approx(
        record["metrics"]["fd-efficientnet-lite0"]["value"], rel=1e-6
    )
    missing = run_cli("run", "--generator", "llamagen-c2i-l-256", "--reference", "samples", "-m", "fd-efficientnet-lite0",
                      "--out", tmp_path, check=2)  # fmt: skip
    assert "vtbench weights fetch llamagen-c2i-l-256" in missing.stderr


def _tiny_dit_pipeline(folder: Path) -> Path:
    """A DiT pipeline in the layout `save_pretrained` writes (transformer, VAE, scheduler), 8x8 px."""
    import diffusers
    from weights_factory import tiny_diffusers_model

    torch.manual_seed(0)
    transformer = diffusers.DiTTransformer2DModel(  # 1,000 classes: DiTPipeline's null class is 1000
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=8,
        num_layers=1,
        norm_num_groups=4,
        sample_size=4,
        patch_size=2,
        num_embeds_ada_norm=1000,
    )
    pipe = diffusers.DiTPipeline(transformer=transformer, vae=tiny_diffusers_model("AutoencoderKL"), scheduler=diffusers.DDIMScheduler())
    pipe.save_pretrained(folder)
    return folder


def test_a_diffusers_dit_pipeline_from_the_hub_cache_generates_by_index(tmp_path: Path) -> None:
    from weights_factory import hub_snapshot

    from vtbench.generators import GENERATORS

    with pytest.raises(
        Exception, match=r"generator 'facebook/DiT-XL-2-256'.*not in the Hugging Face cache.*hf download facebook/DiT-XL-2-256"
    ):
        GENERATORS.create("dit-xl-2-256")
    _tiny_dit_pipeline(hub_snapshot("facebook/DiT-XL-2-256"))
    generator = GENERATORS.create("dit-xl-2-256", steps=3, guidance_scale=2.0, num_classes=10, per_class=2)
    assert generator.num_samples == 20 and generator.labels([0, 11]) == [0, 1]
    together = generator.samples([0, 1, 2])
    apart = torch.cat([generator.samples([0]), generator.samples([1, 2])])
    assert together.shape == (3, 3, 8, 8) and torch.allclose(together, apart, atol=1e-4)
    assert not torch.allclose(together[0], together[1])
    options = generator.options()
    assert options["pipeline"] == "DiTPipeline" and options["scheduler"] == "DDIMScheduler" and options["steps"] == 3
    local = GENERATORS.create("diffusers", weights=str(_tiny_dit_pipeline(tmp_path / "copy")), steps=3, num_classes=10, per_class=1)
    assert local.samples([4]).shape == (1, 3, 8, 8)
    import diffusers

    unet = diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                                 down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2, norm_num_groups=4)  # fmt: skip
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler()).save_pretrained(tmp_path / "unconditional")
    with pytest.raises(ValueError, match="DDPMPipeline is not class-conditional: give prompts=FILE"):
        GENERATORS.create("diffusers", weights=str(tmp_path / "unconditional"))


def test_a_text_to_image_pipeline_samples_a_prompt_file(tmp_path: Path) -> None:
    from weights_factory import tiny_text_to_image_pipeline

    from vtbench.generators import GENERATORS

    folder = tiny_text_to_image_pipeline(tmp_path / "sd")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cat\n\na blue dog\nthe sea\n", encoding="utf-8")
    generator = GENERATORS.create("diffusers", weights=str(folder), prompts=str(prompts), per_prompt=2, steps=2, resolution=8)
    assert generator.num_samples == 6 and generator.labels([0]) is None
    together = generator.samples([0, 1, 5])
    apart = torch.cat([generator.samples([0]), generator.samples([1, 5])])
    assert together.shape == (3, 3, 8, 8) and torch.allclose(together, apart, atol=1e-4)
    assert not torch.allclose(together[0], together[1])  # two seeds of the same prompt
    options = generator.options()
    assert options["pipeline"] == "StableDiffusionPipeline" and options["n_prompts"] == 3 and options["per_prompt"] == 2


PUBLISHED_VAR_D16_KEYS = {  # var_d16.pth: names and shapes of the ends and the first block
    "word_embed.weight": (1024, 32), "class_emb.weight": (1001, 1024), "pos_start": (1, 1, 1024), "pos_1LC": (1, 680, 1024),
    "lvl_embed.weight": (10, 1024), "blocks.0.ada_lin.1.weight": (6144, 1024), "blocks.0.attn.mat_qkv.weight": (3072, 1024),
    "blocks.0.attn.q_bias": (1024,), "blocks.0.attn.v_bias": (1024,), "blocks.0.attn.zero_k_bias": (1024,),
    "blocks.0.attn.scale_mul_1H11": (1, 16, 1, 1), "blocks.0.attn.proj.weight": (1024, 1024), "blocks.0.ffn.fc1.weight": (4096, 1024),
    "blocks.0.ffn.fc2.weight": (1024, 4096), "head_nm.ada_lin.1.weight": (2048, 1024), "head.weight": (4096, 1024),
}  # fmt: skip


def test_var_d16_has_the_published_layout() -> None:
    from vtbench.generators.var import PATCH_NUMS, VARTransformer

    with torch.device("meta"):
        model = VARTransformer(16, PATCH_NUMS[256])
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: shapes[k] for k in PUBLISHED_VAR_D16_KEYS} == PUBLISHED_VAR_D16_KEYS
    assert sum(v.numel() for v in model.parameters()) == pytest.approx(310e6, rel=0.03)


def _tiny_var(seed: int = 0) -> torch.nn.Module:
    from vtbench.generators.var import PATCH_NUMS, VARTransformer

    torch.manual_seed(seed)
    model = VARTransformer(2, PATCH_NUMS[256], vocab_size=64, latent_dim=8, num_classes=10, width=32, heads=2).eval()
    for name, parameter in model.named_parameters():
        if "scale_mul" not in name:
            torch.nn.init.normal_(parameter, std=0.3)
    return model


def _var_files(folder: Path) -> dict[str, str]:
    """A tiny VAR transformer saved as upstream saves it (buffers included) and its tiny VQVAE."""
    from vtbench.tokenizers.var import VarVQVAE

    model = _tiny_var()
    levels = model.levels
    state = {**model.state_dict(), "lvl_1L": levels[None], "attn_bias_for_masking": torch.zeros(1, 1, 680, 680)}
    torch.save(state, folder / "var_d16.pth")
    torch.manual_seed(1)
    torch.save(VarVQVAE(vocab_size=64, z_channels=8, ch=32).state_dict(), folder / "vae_ch160v4096z32.pth")
    return {"VTBENCH_WEIGHTS_VAR_D16": str(folder / "var_d16.pth"), "VTBENCH_WEIGHTS_VAR_VQVAE": str(folder / "vae_ch160v4096z32.pth")}


@pytest.mark.parametrize("cfg", [0.0, 1.5])
def test_var_scale_by_scale_sampling_equals_a_block_causal_pass(cfg: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Greedy next-scale sampling with the key/value cache picks the tokens a teacher-forced
    block-causal pass over the same scale inputs picks, guidance rising as (1 + t) cond - t uncond."""
    from vtbench.generators import GENERATORS
    from vtbench.generators.var import PATCH_NUMS

    for name, value in _var_files(tmp_path).items():
        monkeypatch.setenv(name, value)
    generator = GENERATORS.create("var-d16", num_classes=10, per_class=2, cfg=cfg, top_k=1)
    labels = torch.tensor([3, 8])
    ids, inputs = generator.model.generate(labels, [torch.Generator().manual_seed(i) for i in (0, 1)], generator.refine, cfg=cfg,
                                           top_k=1, return_inputs=True)  # fmt: skip
    assert ids.shape == (2, 680) and inputs.shape == (2, 679, 8)
    logits = generator.model.logits(labels, inputs)
    if cfg:
        uncond = generator.model.logits(torch.full_like(labels, 10), inputs)
        ratios = torch.cat([torch.full((side * side,), cfg * k / 9) for k, side in enumerate(PATCH_NUMS[256])])[None, :, None]
        logits = (1 + ratios) * logits - ratios * uncond
    assert torch.equal(ids, logits.argmax(dim=-1))
    # the scale inputs are the running estimate, area-downsampled: check the second scale's by hand
    estimate = generator.refine(ids[:, :1], 0)
    expected = torch.nn.functional.interpolate(estimate, size=(2, 2), mode="area").flatten(2).transpose(1, 2)
    assert torch.allclose(inputs[:, :4], expected, atol=1e-6)


def test_var_samples_by_index_and_decodes_through_the_vqvae(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vtbench.generators import GENERATORS

    for name, value in _var_files(tmp_path).items():
        monkeypatch.setenv(name, value)
    generator = GENERATORS.create("var-d16", num_classes=10, per_class=3, top_k=10, top_p=0.9)
    assert generator.num_samples == 30 and generator.options()["cfg"] == 1.5
    labels, sampling = torch.tensor(generator.labels([0, 1, 2])), generator.sampling
    together = generator.model.generate(labels, [generator.plan.generator(i) for i in (0, 1, 2)], generator.refine, **sampling)
    apart = [generator.model.generate(labels[i : i + 1], [generator.plan.generator(i)], generator.refine, **sampling) for i in (0, 1, 2)]
    assert torch.equal(together, torch.cat(apart))
    images = generator.samples([0, 1])
    assert images.shape == (2, 3, 256, 256) and float(images.min()) >= 0 and float(images.max()) <= 1
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(Exception, match="not a VAR transformer checkpoint"):
        GENERATORS.create("var-d16", weights=str(tmp_path / "other.pth"))


@pytest.fixture
def titok_generator(monkeypatch: pytest.MonkeyPatch):
    """A tiny TiTok-S-128-layout tokenizer (8 tokens, 32 codes) and a tiny ImageBert generator
    saved into the hub cache as their hub repositories hold them."""
    import json

    from safetensors.torch import save_file
    from weights_factory import hub_snapshot

    from vtbench.generators import GENERATORS
    from vtbench.generators.maskgit import ImageBert
    from vtbench.tokenizers import TOKENIZERS, titok

    monkeypatch.setitem(titok.VIT_SIZES, "tiny", (64, 1, 2))
    torch.manual_seed(0)
    model = titok.TiTokModel("tiny", "tiny", 8, 32, 6, True, True).eval()
    folder = hub_snapshot(TOKENIZERS.get("titok-s128").defaults["repo"])
    vq = {"vit_enc_model_size": "tiny", "vit_dec_model_size": "tiny", "vit_enc_patch_size": 16, "vit_dec_patch_size": 16,
          "num_latent_tokens": 8, "codebook_size": 32, "token_size": 6, "use_l2_norm": True}  # fmt: skip
    (folder / "config.json").write_text(json.dumps({"model": {"vq_model": vq}, "dataset": {"preprocessing": {"crop_size": 256}}}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    bert = ImageBert(32, 8, classes=1000, hidden=32, layers=2, heads=2, intermediate=64).eval()
    for parameter in bert.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    folder = hub_snapshot("yucornetto/generator_titok_s128_imagenet")
    generator_config = {"image_seq_len": 8, "condition_num_classes": 1000, "num_attention_heads": 2, "num_steps": 8,
                        "guidance_scale": 4.5, "guidance_decay": "linear", "randomize_temperature": 9.5}  # fmt: skip
    (folder / "config.json").write_text(json.dumps({"model": {"vq_model": vq, "generator": generator_config}}))
    state = {**bert.state_dict(), "model.embeddings.position_ids": torch.arange(9)[None]}  # older transformers saved the ids
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    return GENERATORS, bert


def test_titok_maskgit_follows_upstream_sampling(titok_generator) -> None:
    import math

    registry, bert = titok_generator
    generator = registry.create("titok-maskgit-s128", num_classes=10, per_class=2)
    assert generator.sampling == {"guidance_scale": 4.5, "guidance_decay": "linear", "randomize_temperature": 9.5, "steps": 8}
    labels = torch.tensor([3, 7])
    trace: list[list[int]] = []
    ids = generator.model.generate(labels, [torch.Generator().manual_seed(i) for i in (0, 1)], trace=trace, **generator.sampling)
    assert ids.shape == (2, 8) and int(ids.max()) < 32  # no mask token left
    expected, masked = [], 8
    for step in range(7):  # upstream's arccos schedule: floor(L acos(r) / (pi/2)), at least 1, fewer than before
        masked = max(1, min(masked - 1, math.floor(8 * math.acos((step + 1) / 8) / (math.pi / 2))))
        expected.append([masked, masked])
    assert trace == expected
    # one step without noise: every token is the argmax of cond + s (cond - uncond)
    greedy = bert.generate(labels, [torch.Generator()] * 2, guidance_scale=2.0, randomize_temperature=0.0, steps=1)
    all_masked = torch.full((2, 8), 32)
    cond, uncond = bert.logits(all_masked, labels), bert.logits(all_masked, labels, conditional=False)
    assert torch.equal(greedy, (cond + 2.0 * (cond - uncond)).argmax(dim=-1))
    # sample i depends on i alone, and decodes through the TiTok tokenizer
    together = generator.model.generate(labels, [generator.plan.generator(i) for i in (3, 7)], **generator.sampling)
    apart = [generator.model.generate(labels[i : i + 1], [generator.plan.generator(j)], **generator.sampling) for i, j in enumerate((3, 7))]
    assert torch.equal(together, torch.cat(apart))
    images = generator.samples([3, 7])
    assert images.shape == (2, 3, 256, 256) and generator.labels([3, 7]) == [3, 7]
    # the release's sample script truncates ((x * 255).to(uint8)); the engine stores what it stores
    assert torch.equal(generator.as_uint8(images), (images.clamp(0, 1) * 255).to(torch.uint8)) and generator.to_8bit == "truncate"
    assert generator.options()["tokenizer"] == "titok-s128"
    from vtbench.generators.maskgit import _gumbel

    assert _gumbel(torch.tensor([0.5, 0.9])).tolist() == pytest.approx([-math.log(math.log(2)), -math.log(-math.log(0.9))], rel=1e-6)


def test_clip_score_of_text_to_image_samples_follows_torchmetrics_definition(tmp_path: Path) -> None:
    import os

    from weights_factory import hub_snapshot, tiny_clip_model, tiny_text_to_image_pipeline

    clip_folder = tiny_clip_model(hub_snapshot("openai/clip-vit-large-patch14"))
    pipeline = tiny_text_to_image_pipeline(tmp_path / "sd")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cat\na blue dog\nthe sea\n", encoding="utf-8")
    out = tmp_path / "out"
    run_cli("run", "-g", f"diffusers:weights={pipeline},prompts={prompts},per_prompt=2,steps=2,resolution=32", "--reference", "samples",
            "--resolution", "32", "-m", "clip-score", "--save-reconstructions", "--out", out, env=dict(os.environ))  # fmt: skip
    record = json.loads(next(out.glob("*.json")).read_text())
    with np.load(next(out.glob("*.samples.npz"))) as batch:
        images = torch.from_numpy(batch["arr_0"]).permute(0, 3, 1, 2)
    texts = [line for line in ("a red cat", "a blue dog", "the sea") for _ in range(2)]
    # torchmetrics' definition, written out with transformers (torchmetrics' own helper predates transformers 5's outputs)
    import transformers

    model, processor = (
        transformers.CLIPModel.from_pretrained(str(clip_folder)),
        transformers.CLIPProcessor.from_pretrained(str(clip_folder)),
    )
    inputs = processor(text=texts, images=[image for image in images], return_tensors="pt", padding=True)
    with torch.no_grad():
        image = model.visual_projection(model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output)
        text = model.text_projection(model.text_model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).pooler_output)
    cosines = torch.nn.functional.cosine_similarity(image.double(), text.double(), dim=-1)
    expected = max(float((100 * cosines).mean()), 0.0)
    assert record["samples"]["evaluated"] == 6
    assert record["metrics"]["clip-score"]["value"] == pytest.approx(expected, rel=1e-5)
    # samples made elsewhere take their prompts from a file, line i for sample i
    again = tmp_path / "again"
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(texts) + "\n", encoding="utf-8")
    samples = next(out.glob("*.samples.npz"))
    run_cli("run", "-g", samples, "--reference", "samples", "--resolution", "32", "-m", f"clip-score:prompts={lines}", "--out", again)
    rescored = json.loads(next(again.glob("*.json")).read_text())
    assert rescored["metrics"]["clip-score"]["value"] == pytest.approx(expected, rel=1e-5)
