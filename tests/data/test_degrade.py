"""The seeded stand-in degradations: motion-blur kernels and rain streaks."""

from __future__ import annotations

import numpy as np

from dckd_cli.data import builtin
from dckd_cli.data.benchmarks import builtin_degrade, load_benchmark
from dckd_cli.data.degrade import MotionBlur, Rain, add_rain, motion_blur, motion_kernel


def _extent(kernel: np.ndarray) -> float:
    ys, xs = np.nonzero(kernel > kernel.max() * 0.05)
    return float(np.hypot(np.ptp(xs), np.ptp(ys)))


def test_motion_kernels_are_normalised_seeded_and_varied():
    kernels = [motion_kernel(np.random.default_rng(s)) for s in range(20)]
    for k in kernels:
        assert k.shape == (25, 25) and k.min() >= 0 and abs(float(k.sum()) - 1) < 1e-5
    assert np.array_equal(kernels[3], motion_kernel(np.random.default_rng(3)))  # same seed, same kernel
    extents = [_extent(k) for k in kernels]
    assert max(extents) - min(extents) > 6  # short and long paths
    # a straight path (no curvature, no jitter) concentrates on a line; curved ones spread out
    straight = motion_kernel(np.random.default_rng(0), MotionBlur(curvature=(0, 0), jitter=0, length=(15, 15)))
    ys, xs = np.nonzero(straight > 0.01)
    fit = np.polyfit(xs, ys, 1) if np.ptp(xs) > np.ptp(ys) else np.polyfit(ys, xs, 1)
    resid = np.abs(np.polyval(fit, xs if np.ptp(xs) > np.ptp(ys) else ys) - (ys if np.ptp(xs) > np.ptp(ys) else xs))
    assert resid.max() < 1.5


def test_motion_blur_keeps_the_mean_and_removes_detail():
    img = builtin.eval_images()[0][1]
    out = motion_blur(img, np.random.default_rng(1), MotionBlur(length=(15, 15)))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert abs(float(out.mean()) - float(img.mean())) < 1.0

    def detail(a: np.ndarray) -> float:
        f = a.astype(np.float32)
        return float(np.abs(np.diff(f, axis=1)).mean() + np.abs(np.diff(f, axis=0)).mean())

    assert detail(out) < 0.7 * detail(img)


def test_rain_adds_bright_streaks_with_varied_layers_and_angles():
    img = np.full((128, 128, 3), 60, np.uint8)
    outs = [add_rain(img, np.random.default_rng(s)) for s in range(8)]
    for out in outs:
        assert (out >= img).all()  # additive: rain only brightens
        assert 0.005 < float((out > img).mean()) < 0.6
    assert np.array_equal(outs[2], add_rain(img, np.random.default_rng(2)))
    assert len({float((o > img).mean()) for o in outs}) == 8  # densities differ

    def angle(out: np.ndarray) -> float:  # the dominant streak direction, from the image's second moments
        g = (out[:, :, 0] > img[0, 0, 0]).astype(np.float32)
        gy, gx = np.gradient(g)
        return 0.5 * np.degrees(np.arctan2(2 * (gx * gy).sum(), ((gx**2) - (gy**2)).sum()))

    one_layer = Rain(layers=(1, 1), density=(0.003, 0.003))
    angles = [angle(add_rain(img, np.random.default_rng(s), one_layer)) for s in range(6)]
    assert np.ptp(angles) > 10


def test_builtin_sets_use_the_stand_ins_and_stay_fixed():
    for task in ("deblur", "derain"):
        first = [p.load() for p in load_benchmark("builtin", task, 1, None)]
        again = [p.load() for p in load_benchmark("builtin", task, 1, None)]
        for (lq, gt), (lq2, _) in zip(first, again):
            assert lq.shape == gt.shape and np.array_equal(lq, lq2) and not np.array_equal(lq, gt)
    gt = builtin.eval_images()[1][1]
    assert not np.array_equal(builtin_degrade("deblur", gt, 1, 0), builtin_degrade("deblur", gt, 1, 1))
