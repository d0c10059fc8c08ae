"""What DCKD's contrastive term does to the student's output, per feature encoder.

On one batch of x4 SR patches (T91 HR crops, bicubic LR), for a student at initialisation and
the same student after the protocol's 500 scratch iterations (``--trained``, a run folder),
the gradient of each weighted loss term with respect to the student's output is compared with
the logits-KD term's: its norm ratio and cosine, and its cosine with the direction that lowers
the error to the ground truth (``sign(gt - out)``, the L1 descent direction), and the share of its
energy at high spatial frequencies. Settings as in
``reproduce_scratch.py``; the encoders are the packaged compact VQGAN, the pretrained taesana
encoder and the random taesana-shaped one (``--random``, made by ``reproduce_scratch.py``).

    python benchmarks/dcl_gradients.py --shared ../shared \
        --trained runs/reproduce-scratch/scratch/seed-0 \
        --random runs/reproduce-scratch/taesana-random.safetensors

``--levels`` prints, per encoder and resolution level, what Eq. 5's ratio is made of: the
positive's mean feature magnitude, the pull (anchor to positive, the numerator), the push
(anchor to each negative, summed: the denominator), the level's weighted ratio, and the norm
of that level's gradient on the student's output against the logits term's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dckd_cli.data.images import list_images, read_image
from dckd_cli.data.resize import bicubic_downscale
from dckd_cli.engine.build import build_models
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.methods.build import build_method
from dckd_cli.methods.context import StepContext
from dckd_cli.models.checkpoints import read_state_dict
from dckd_cli.pipelines.demo_teacher import packaged_teacher
from dckd_cli.settings.presets import resolve_settings


def batch(folder: Path, n: int, hr_side: int, scale: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    paths = [p for p in list_images(folder) if min(read_image(p).shape[:2]) >= hr_side]
    lqs, gts = [], []
    for k in range(n):
        img = read_image(paths[k % len(paths)])
        top, left = (int(rng.integers(0, d - hr_side + 1)) for d in img.shape[:2])
        hr = np.ascontiguousarray(img[top : top + hr_side, left : left + hr_side])
        lqs.append(bicubic_downscale(hr, scale))
        gts.append(hr)

    def tensor(images: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0

    return tensor(lqs), tensor(gts)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """In float64: float32's cosine_similarity is off by up to 1e-3 over a batch's ~440k values."""
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()))


def high_frequency_share(g: torch.Tensor) -> float:
    """The share of ``g``'s energy above a quarter cycle per pixel (half the Nyquist frequency)."""
    power = torch.fft.fft2(g).abs().square()
    fy = torch.fft.fftfreq(g.shape[-2]).abs().view(-1, 1)
    fx = torch.fft.fftfreq(g.shape[-1]).abs().view(1, -1)
    high = (torch.maximum(fy, fx) > 0.25).to(power.dtype)
    return float((power * high).sum() / power.sum())


def print_levels(method, settings, lq, gt, out, kd, head: str) -> None:  # noqa: ANN001
    """One row per encoder level: Eq. 5's numerator, denominator and gradient at that level."""
    ctx = StepContext(method.resources, settings.method, lq, gt, out)
    anchor, targets = ctx.anchor[0], ctx.targets
    encoder = method.resources.encoder
    for level, a, p, n, w in zip(encoder.levels, anchor, targets.positive, targets.negatives, encoder.layer_weights):
        pull = (a - p).abs().mean()
        push = (a.unsqueeze(0) - n).abs().flatten(1).mean(dim=1).sum()
        term = method.weights["dcl"] * w * pull / (push + 1e-7)
        grad = torch.autograd.grad(term, out, retain_graph=True)[0]
        print(
            f"{head}| {level} | {w:g} | {float(p.abs().mean()):.4g} | {float(pull):.4g} | {float(push):.4g} "
            f"| {float(term):.4g} | {float(grad.norm() / kd.norm()):.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--trained", type=Path, help="a scratch run folder of the protocol (its final EMA student)")
    parser.add_argument("--random", type=Path, help="the random taesana-shaped encoder")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=24, help="LR patch side")
    parser.add_argument("--levels", action="store_true", help="the ratio's parts per encoder level")
    args = parser.parse_args()
    torch.manual_seed(0)
    lq, gt = batch(args.shared / "data" / "T91", args.batch, args.patch * 4, 4, seed=0)
    encoders = {"vqgan": None, "taesana": args.shared / "weights" / "taesana_encoder.pth", "random": args.random}
    base = [
        "task=sr",
        "scale=4",
        "teacher.arch=auto",
        f"teacher.checkpoint={packaged_teacher('sr', 4)}",
        "student.arch=rcan",
        "student.size=lite",
        "method.name=dckd",
        "data.val=builtin-train",
    ]
    if args.levels:
        print(
            "| student | encoder | level | λ_i | mean \\|φ_i(p)\\| | pull | push (Σ over negatives) "
            "| λ_i·pull/push | ‖∇_i‖ / ‖∇kd‖ |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
    else:
        print(
            "| student | encoder | term | ‖∇‖ / ‖∇kd‖ | cos(∇, ∇kd) | cos(−∇, sign(gt − out)) | high-frequency share |"
        )
        print("|---|---|---|---|---|---|---|")
    for state in ("init", "trained"):
        for name, path in encoders.items():
            if path is None and name != "vqgan":
                continue
            extra = [] if path is None else [f"method.encoder.checkpoint={path}", "method.weights.ce=0"]
            settings = resolve_settings(None, {}, [*base, *extra])
            torch.manual_seed(0)
            student, teacher = build_models(settings, needs_teacher=True)
            if state == "trained":
                if args.trained is None:
                    continue
                student.load_state_dict(read_state_dict(RunFolder(args.trained).weights("last")))
            method = build_method(settings, student, teacher)
            out = student(lq.clone())
            terms = method.loss_terms(lq, gt, out)
            grads = {t: torch.autograd.grad(v, out, retain_graph=True)[0] for t, v in terms.items() if v.requires_grad}
            descent = torch.sign(gt - out.detach())
            kd = grads["kd"]
            if args.levels:
                print_levels(method, settings, lq, gt, out, kd, f"| {state} | {name} ")
                continue
            for term, g in grads.items():
                ratio = float(g.norm() / kd.norm())
                print(
                    f"| {state} | {name} | {term} | {ratio:.2f} | {cosine(g, kd):+.3f} | {cosine(-g, descent):+.3f} "
                    f"| {high_frequency_share(g):.2f} |"
                )


if __name__ == "__main__":
    main()
