"""`dckd encoder fit`: train a compact VQGAN autoencoder on any image folder.

Same taming-transformers architecture and key layout as the official ImageNet model
(encoder, quant_conv, codebook, post_quant_conv, decoder), smaller channels and codebook.
Loss: L1 reconstruction + the VQ codebook / commitment terms (straight-through); codes
unused for a while are re-seeded from current encodings so the codebook stays in use.
The saved ``.safetensors`` holds the taming keys; a ``.json`` beside it holds the config,
the command's figures (reconstruction PSNR, codebook usage) and how it was made.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from dckd_cli.atomic import atomic_path
from dckd_cli.data import builtin
from dckd_cli.data.folders import DatasetError
from dckd_cli.data.images import list_images, read_image, uint8_to_tensor_array
from dckd_cli.data.pairs import TrainingPatches
from dckd_cli.errors import DckdError
from dckd_cli.losses.distribution import code_logits
from dckd_cli.models.vqgan import VQGANConfig, VQGANEncoder, build_decoder

COMPACT = VQGANConfig(
    ch=32, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1, attn_resolutions=(), z_channels=64, embed_dim=64, n_embed=256
)

REVIVE_AFTER = 50  # iterations a code may go unused before it is re-seeded


@dataclass
class FitReport:
    iterations: int
    recon_psnr: float
    codebook_usage: float
    seconds: float
    images: int


class _Autoencoder(nn.Module):
    def __init__(self, config: VQGANConfig):
        super().__init__()
        frozen = VQGANEncoder(config)  # borrow the encoder stack, then make it trainable
        self.encoder, self.quant_conv = frozen.encoder, frozen.quant_conv
        self.codebook = nn.Parameter(torch.randn(config.n_embed, config.embed_dim) * 0.1)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)
        self.decoder = build_decoder(config)
        self.encoder_view = frozen
        self.requires_grad_(True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        _, z = self.encoder_view(x, latents=True)
        assert z is not None
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        codes = code_logits(z, self.codebook, sign=1).argmin(1)  # nearest code, distances as in the DMM
        zq = self.codebook[codes].view(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        vq = F.mse_loss(zq, z.detach()) + 0.25 * F.mse_loss(z, zq.detach())
        zq = z + (zq - z).detach()  # straight-through
        return self.decoder(self.post_quant_conv(zq)), vq, codes, flat.detach()

    def taming_state(self) -> dict[str, torch.Tensor]:
        state = {f"encoder.{k}": v for k, v in self.encoder.state_dict().items()}
        state |= {f"quant_conv.{k}": v for k, v in self.quant_conv.state_dict().items()}
        state |= {f"post_quant_conv.{k}": v for k, v in self.post_quant_conv.state_dict().items()}
        state |= {f"decoder.{k}": v for k, v in self.decoder.state_dict().items()}
        state["quantize.embedding.weight"] = self.codebook.detach()
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _images(source: str) -> list[np.ndarray]:
    if source == "builtin":
        return [img for _, img in builtin.train_images()]
    paths = list_images(Path(source))
    if not paths:
        raise DatasetError(f"{source}: no images to fit an encoder on")
    return [read_image(p) for p in paths]


def _evaluate(model: _Autoencoder, images: list[np.ndarray], side: int) -> tuple[float, float]:
    """Mean reconstruction PSNR (RGB, 8-bit) and codebook usage on centre crops."""
    model.eval()
    mses, used = [], set()
    with torch.no_grad():
        for arr in images:
            img = torch.from_numpy(uint8_to_tensor_array(arr))
            h, w = img.shape[-2:]
            s = min(side, h - h % 16, w - w % 16)
            top, left = (h - s) // 2, (w - s) // 2
            x = img[None, :, top : top + s, left : left + s]
            rec, _, codes, _ = model(x)
            rec8 = (rec.clamp(0, 1) * 255).round()
            mses.append(float(((rec8 - (x * 255).round()) ** 2).mean()))
            used |= set(codes.tolist())
    model.train()
    psnr = sum(10 * math.log10(255**2 / max(m, 1e-10)) for m in mses) / len(mses)
    return psnr, len(used) / model.codebook.shape[0]


def fit_encoder(
    source: str,
    output: Path,
    *,
    config: VQGANConfig = COMPACT,
    iters: int = 3000,
    batch: int = 8,
    patch: int = 64,
    lr: float = 2e-4,
    seed: int = 0,
    on_step: Callable[[int, dict], None] | None = None,
) -> FitReport:
    """Train the autoencoder on ``source`` (a folder or ``builtin``); write ``output`` (+ .json)."""
    downsampling = 2 ** (len(config.ch_mult) - 1)
    if iters < 1 or batch < 1:
        raise DckdError(f"--iters {iters} --batch {batch}: both must be at least 1")
    if patch < downsampling or patch % downsampling:
        raise DckdError(f"--patch {patch}: must be a multiple of {downsampling} (the encoder's downsampling)")
    torch.manual_seed(seed)
    images = _images(source)
    model = _Autoencoder(config)
    samples = TrainingPatches([lambda img=img: (img, img) for img in images], 1, patch, iters * batch, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.9))
    last_used = torch.zeros(config.n_embed, dtype=torch.long)
    began = time.perf_counter()
    for it in range(1, iters + 1):
        x = torch.stack([samples[(it - 1) * batch + k][1] for k in range(batch)])
        if it == 1:  # start the codebook on real encodings, not noise (avoids early collapse)
            with torch.no_grad():
                _, _, _, flat = model(x)
                model.codebook.copy_(flat[torch.randint(len(flat), (config.n_embed,))])
        rec, vq, codes, flat = model(x)
        loss = F.l1_loss(rec, x) + vq
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        last_used[codes.unique()] = it
        dead = (it - last_used > REVIVE_AFTER).nonzero().flatten()
        if len(dead) and it % REVIVE_AFTER == 0:  # re-seed unused codes from current encodings
            pick = torch.randint(len(flat), (len(dead),))
            with torch.no_grad():
                model.codebook[dead] = flat[pick]
            last_used[dead] = it
        if on_step is not None and (it % 100 == 0 or it == iters):
            on_step(it, {"loss": loss.item(), "vq": vq.item()})
    psnr, usage = _evaluate(model, images, side=256)
    report = FitReport(iters, psnr, usage, time.perf_counter() - began, len(images))
    _write(
        output,
        model.taming_state(),
        config,
        report,
        {"source": source, "iters": iters, "batch": batch, "patch": patch, "lr": lr, "seed": seed},
    )
    return report


def _write(output: Path, state: dict[str, torch.Tensor], config: VQGANConfig, report: FitReport, args: dict) -> None:
    with atomic_path(output) as tmp:
        save_file(state, str(tmp))
    meta = json.loads(config.to_json()) | {"fit": asdict(report), "command": args}
    output.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
