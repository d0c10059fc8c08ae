"""Channels-last against contiguous memory, network by network, in one process: what
``runtime.channels_last``'s default rests on (on the CPU: on for the mostly convolutional
networks, ``engine/switches.convolutional``).

Per network: seconds of a training pass (forward and backward) for a student, of a frozen
forward for a teacher or an encoder, in each memory format, the two timed in turn; the
ratio is channels-last's time over contiguous's (below 1: channels-last is faster).

    python benchmarks/memory_format.py            # about 2 minutes on 2 CPU cores
    python benchmarks/memory_format.py --json FILE
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from dckd_cli.engine.switches import convolutional
from dckd_cli.models.tiny_ae import TinyAEEncoder
from dckd_cli.models.vqgan import VQGANConfig, VQGANEncoder, resolve_encoder
from dckd_cli.models.zoo import build_model


class Levels(nn.Module):
    """An encoder called as dcl calls it: every level's features."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats, _ = self.encoder(x, tuple(range(self.encoder.levels)))
        return feats[-1]


def networks(shared: Path) -> list[tuple[str, nn.Module, tuple[int, ...], bool]]:
    """(name, network, input shape, trained) at the sizes a step gives them."""
    torch.manual_seed(0)
    rows = [
        ("rcan lite x4 (student)", build_model("rcan", "lite", 4), (16, 3, 24, 24), True),
        ("rcan student x2 (student)", build_model("rcan", "student", 2), (2, 3, 48, 48), True),
        ("swinir student x4 (student)", build_model("swinir", "student", 4), (2, 3, 48, 48), True),
        ("swinir teacher x4 (teacher)", build_model("swinir", "teacher", 4), (2, 3, 48, 48), False),
        ("ImageNet-size VQGAN (encoder)", Levels(VQGANEncoder(VQGANConfig())), (12, 3, 192, 192), False),
        ("packaged compact VQGAN (encoder)", Levels(resolve_encoder(None)), (96, 3, 96, 96), False),
    ]
    tiny = shared / "weights" / "taesana_encoder.pth"
    if tiny.is_file():
        from dckd_cli.models.checkpoints import read_state_dict

        encoder = Levels(TinyAEEncoder(read_state_dict(tiny)))
        rows.append(("tiny autoencoder (encoder)", encoder, (96, 3, 96, 96), False))
    return rows


def pass_of(network: nn.Module, x: torch.Tensor, trained: bool, fmt: torch.memory_format) -> Callable[[], float]:
    copy = x.contiguous(memory_format=fmt)

    def run() -> float:
        network.to(memory_format=fmt)
        began = time.perf_counter()
        if trained:
            network.train()
            network(copy).abs().mean().backward()
            network.zero_grad(set_to_none=True)
        else:
            network.eval()
            with torch.inference_mode():
                network(copy)
        return time.perf_counter() - began

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared"), help="for the tiny autoencoder's weights")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    record = {}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| network | input | contiguous s | channels-last s | ratio | convolutional (default on) |")
    print("|---|---|---|---|---|---|")
    for name, network, shape, trained in networks(args.shared):
        x = torch.rand(shape)
        plain = pass_of(network, x, trained, torch.contiguous_format)
        last = pass_of(network, x, trained, torch.channels_last)
        plain(), last()  # warm-up
        pairs = [(plain(), last()) for _ in range(args.rounds)]
        row = {
            "contiguous": statistics.median(p for p, _ in pairs),
            "channels_last": statistics.median(c for _, c in pairs),
            "ratio": statistics.median(c / p for p, c in pairs),
            "convolutional": convolutional(network),
        }
        record[name] = row
        print(
            f"| {name} | {'x'.join(map(str, shape))} | {row['contiguous']:.3f} | {row['channels_last']:.3f} "
            f"| {row['ratio']:.2f} | {'yes' if row['convolutional'] else 'no'} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
