"""The frozen VQGAN feature encoder and codebook that DCKD measures images with.

Built from ``taming.modules`` (taming-transformers) with the official layout, so the
ImageNet f16-1024 checkpoint (``state_dict`` with ``encoder.*``, ``quant_conv.*``,
``quantize.embedding.weight``) loads as is. Two uses (docs/method.md):

* contrastive features phi_i: the output of the first ResnetBlock of each resolution level
  (128/128/256/256/512 channels at H .. H/16 for the official model);
* the distribution mapping module: encoder -> quant_conv -> z, compared with the codebook.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from taming.modules.diffusionmodules.model import Decoder, Encoder, ResnetBlock, nonlinearity

from dckd_cli.assets import ASSETS
from dckd_cli.models.checkpoints import CheckpointError, fetch_to_cache, read_state_dict
from dckd_cli.models.segments import Segment, direct

VQGAN_IMAGENET_URL = "https://heibox.uni-heidelberg.de/d/8088892a516d4e3baf92/files/?p=%2Fckpts%2Flast.ckpt&dl=1"
VQGAN_IMAGENET_FILE = "vqgan_imagenet_f16_1024.ckpt"
COMPACT_ENCODER = ASSETS / "vqgan_compact.safetensors"


@dataclass(frozen=True)
class VQGANConfig:
    """taming's ``ddconfig`` plus the codebook size; the default is ImageNet f16-1024."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    z_channels: int = 256
    embed_dim: int = 256
    n_embed: int = 1024
    resolution: int = 256
    dropout: float = 0.0

    def ddconfig(self) -> dict:
        return {
            "ch": self.ch,
            "out_ch": 3,
            "ch_mult": list(self.ch_mult),
            "num_res_blocks": self.num_res_blocks,
            "attn_resolutions": list(self.attn_resolutions),
            "dropout": self.dropout,
            "in_channels": 3,
            "resolution": self.resolution,
            "z_channels": self.z_channels,
            "double_z": False,
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> VQGANConfig:
        raw = json.loads(text)  # may carry more (fit figures, command); keep the config fields
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in names})


def silu(h: torch.Tensor) -> torch.Tensor:
    """taming's nonlinearity, ``h * sigmoid(h)``, as one operation: a graph keeps ``h`` alone
    for its backward (not ``h`` and ``sigmoid(h)``), and without a graph it runs in place."""
    return F.silu(h, inplace=not torch.is_grad_enabled())


def resnet_block(block: ResnetBlock, h: torch.Tensor) -> torch.Tensor:
    """taming's ``ResnetBlock.forward`` without a time embedding, its nonlinearity as `silu`."""
    x = h
    h = block.conv1(silu(block.norm1(h)))
    h = block.conv2(block.dropout(silu(block.norm2(h))))
    if block.in_channels != block.out_channels:
        x = block.conv_shortcut(x) if block.use_conv_shortcut else block.nin_shortcut(x)
    return x + h


def taming_block(block: ResnetBlock, h: torch.Tensor) -> torch.Tensor:
    """The block's own forward, as taming wrote it (two operations per nonlinearity)."""
    return block(h, temb=None)


class VQGANEncoder(nn.Module):
    """Encoder + quant_conv + codebook, with multi-level feature taps. Always frozen.

    Its ResnetBlocks run as `resnet_block` (the same arithmetic as taming's, SiLU as one
    operation: the anchor's graph keeps 0.77x the bytes, docs/performance.md); ``fused=False``
    runs taming's own forwards."""

    def __init__(self, config: VQGANConfig = VQGANConfig(), input_range: str = "0,1", fused: bool = True):
        super().__init__()
        self.config, self.input_range = config, input_range
        self.fused = fused
        self.encoder = Encoder(**config.ddconfig())
        self.quant_conv = nn.Conv2d(config.z_channels, config.embed_dim, 1)
        self.codebook = nn.Parameter(torch.zeros(config.n_embed, config.embed_dim))
        self.levels = len(config.ch_mult)
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> VQGANEncoder:
        return super().train(False)  # frozen: never in training mode (no dropout, fixed norms)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0 - 1.0 if self.input_range == "-1,1" else x

    def forward(
        self, x: torch.Tensor, levels: tuple[int, ...] = (), latents: bool = False, segment: Segment = direct
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """One pass: first-ResnetBlock outputs at ``levels`` (0 = full resolution) and, with
        ``latents``, the pre-quantisation ``z = quant_conv(encoder(x))``. Without ``latents``
        the pass stops after the deepest tapped level (as the released code does). Every
        ResnetBlock, attention block and the output head run through ``segment``."""
        enc, h = self.encoder, self.encoder.conv_in(self._prepare(x))
        run = resnet_block if self.fused else taming_block
        taps: list[torch.Tensor] = []
        last = enc.num_resolutions - 1 if latents else max(levels, default=-1)
        for level in range(last + 1):
            for block in range(enc.num_res_blocks):
                h = segment(partial(run, enc.down[level].block[block]), h)
                if block == 0 and level in levels:
                    taps.append(h)
                    if not latents and level == last:
                        return taps, None
                if len(enc.down[level].attn) > 0:
                    h = segment(enc.down[level].attn[block], h)
            if level != enc.num_resolutions - 1:
                h = enc.down[level].downsample(h)
        if not latents:
            return taps, None
        h = segment(partial(run, enc.mid.block_1), h)
        h = segment(partial(run, enc.mid.block_2), segment(enc.mid.attn_1, h))
        return taps, segment(self._head, h)

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        act = silu if self.fused else nonlinearity
        return self.quant_conv(enc.conv_out(act(enc.norm_out(h))))


def official_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep what the encoder needs from a full taming checkpoint, renamed to this module."""
    kept = {k: v for k, v in state.items() if k.startswith(("encoder.", "quant_conv."))}
    if "quantize.embedding.weight" in state:
        kept["codebook"] = state["quantize.embedding.weight"]
    return kept


def load_encoder(
    path: Path, config: VQGANConfig | None = None, input_range: str = "0,1", raw: dict | None = None
) -> VQGANEncoder:
    """An encoder from a checkpoint in the official key layout (``.ckpt`` / ``.safetensors``).

    The config is read from a ``<file>.json`` beside the checkpoint when present (compact
    encoders made by ``dckd encoder fit``), else ``config`` or the ImageNet f16-1024 one.
    """
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if config is None:
        config = VQGANConfig.from_json(sidecar.read_text()) if sidecar.is_file() else VQGANConfig()
    model = VQGANEncoder(config, input_range)
    state = official_state(raw if raw is not None else read_state_dict(path))
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    bad = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or bad:
        example = (bad or missing)[0]
        raise CheckpointError(
            f"{path}: not a VQGAN checkpoint of this configuration ({len(missing)} missing, {len(bad)} "
            f"shape-mismatched keys, e.g. '{example}'); expected state_dict keys encoder.*, quant_conv.*, "
            "quantize.embedding.weight"
        )
    model.load_state_dict({k: state[k].float() for k in expected})
    return model.eval().requires_grad_(False)


def build_decoder(config: VQGANConfig) -> nn.Module:
    """taming's decoder for the same config (used only to fit a compact encoder)."""
    return Decoder(**config.ddconfig())


def resolve_encoder(checkpoint: Path | str | None, input_range: str = "0,1") -> nn.Module:
    """The encoder settings name: a path, ``imagenet`` (official, cached / downloaded), or
    nothing (the compact encoder packaged with dckd). A path is a VQGAN checkpoint or a
    pretrained tiny-autoencoder encoder (``models/tiny_ae.py``), told apart by its keys."""
    if checkpoint is None:
        if not COMPACT_ENCODER.is_file():
            raise CheckpointError(f"{COMPACT_ENCODER}: the packaged compact encoder is missing; reinstall dckd")
        return load_encoder(COMPACT_ENCODER, input_range=input_range)
    if str(checkpoint) == "imagenet":
        path = fetch_to_cache(VQGAN_IMAGENET_URL, VQGAN_IMAGENET_FILE, flag="--set method.encoder.checkpoint=FILE")
        return load_encoder(path, VQGANConfig(), input_range)
    from dckd_cli.models.tiny_ae import TinyAEEncoder, is_tiny_ae

    path = Path(checkpoint)
    state = read_state_dict(path)
    if is_tiny_ae(state):
        if input_range != "0,1":
            raise CheckpointError(f"{path}: a tiny-autoencoder encoder takes inputs in [0, 1]; drop input_range")
        return TinyAEEncoder(state)
    return load_encoder(path, input_range=input_range, raw=state)
