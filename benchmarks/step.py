"""Step benchmark at the paper setting, timed through the real step (``engine/step.time_steps``).

Methods scratch, logits, fakd, dckd and dckd-star on the SwinIR pair (SwinIR-M teacher ->
SwinIR-S student, x4) and the RCAN pair (x2), 48² LQ patches; DCKD with the compact encoder
packaged with dckd, one of the tiny-autoencoder's size and one of the ImageNet VQGAN's size
(random weights: the cost does not depend on them). Per row: seconds per step, peak memory
(CUDA), GFLOP per step (torch's FLOP counter, forward and backward), and the time ratio to
logits beside the FLOP ratio. dckd is also timed against a straightforward reference step
written here (the same losses, their value checked equal to 1e-5).

    python benchmarks/step.py --quick --json step.json     # the SwinIR pair, batch 2: minutes
    python benchmarks/step.py --json step.json             # both pairs, every encoder, batch 16
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import platform
import shlex
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from dckd_cli.engine.build import Run, build_run
from dckd_cli.engine.memory import saved_for_backward
from dckd_cli.engine.step import Stepper, step_clock, synced_seconds, synthetic_batches, time_steps
from dckd_cli.losses.contrastive import contrastive_loss
from dckd_cli.losses.distribution import distribution_loss
from dckd_cli.methods.negatives import HistoryNegatives, negative_inputs
from dckd_cli.models.vqgan import VQGANConfig, VQGANEncoder
from dckd_cli.models.zoo import build_model
from dckd_cli.settings.presets import resolve_settings

PAIRS = {"swinir-x4": ("swinir", 4), "rcan-x2": ("rcan", 2)}
METHODS = ("scratch", "logits", "fakd", "dckd", "dckd-star")
PRECISIONS = ("no", "bf16", "fp16")  # runtime.mixed_precision


def random_imagenet_encoder(path: Path) -> Path:
    """An encoder of the ImageNet f16-1024 VQGAN's shape with random weights."""
    torch.manual_seed(0)
    model = VQGANEncoder(VQGANConfig())
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "codebook"}
    state["quantize.embedding.weight"] = torch.randn(1024, 256)
    save_file(state, str(path))
    return path


def random_teacher(arch: str, scale: int, path: Path) -> Path:
    """A teacher of the architecture table's ``teacher`` size with random weights, written to
    ``path`` (the step's cost does not depend on the weights)."""
    model = build_model(arch, "teacher", scale)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def random_tiny_ae(path: Path, like: Path) -> Path | None:
    """A tiny-autoencoder encoder of ``like``'s shape with random weights (None without ``like``)."""
    if not like.is_file():
        return None
    from dckd_cli.models.checkpoints import read_state_dict
    from dckd_cli.models.tiny_ae import TinyAEEncoder

    torch.manual_seed(0)
    model = TinyAEEncoder(read_state_dict(like))
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.GroupNorm)):
            module.reset_parameters()
    save_file({k: v.contiguous() for k, v in model.layers.state_dict().items()}, str(path))
    return path


def settings_for(pair: str, method: str, encoder: Path | None, teacher: Path, args: argparse.Namespace):  # noqa: ANN201
    arch, scale = PAIRS[pair]
    overrides = [
        "task=sr",
        f"scale={scale}",
        f"teacher.arch={arch}",
        "teacher.size=teacher",
        f"teacher.checkpoint={teacher}",
        f"student.arch={arch}",
        "student.size=student",
        f"data.patch_size={args.patch}",
        f"data.batch_size={args.batch}",
        "runtime.device=" + ("auto" if torch.cuda.is_available() else "cpu"),
    ]
    if encoder is not None:
        overrides.append(f"method.encoder.checkpoint={encoder}")
        if "tiny-ae" in encoder.name:
            overrides.append("method.weights.ce=0")  # no codebook: DCR only
    flags = {"method.name": method, "optim.iters": 1000, "runtime.mixed_precision": args.precision}
    return resolve_settings("demo", flags, [*overrides, *args.set])


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    return f"{platform.machine()} CPU"


def step_costs(run: Run) -> tuple[float, float]:
    """GFLOP of one training step (forward and backward, torch's FLOP counter) and the MB of
    activations its graph keeps for the backward (any device), from one step."""
    from torch.utils.flop_counter import FlopCounterMode

    stepper = Stepper(run)
    lq, gt = next(synthetic_batches(run))
    with FlopCounterMode(display=False) as counter:
        with saved_for_backward() as saved:
            _, loss = stepper.forward(lq, gt)
        loss.backward()
    run.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9, saved.mb


def release_memory() -> None:
    """Free what earlier rows left (reference cycles in their networks' hooks keep them alive
    until a collection), and CUDA's cached blocks, so a row's peak is its own."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def straightforward(network: nn.Module) -> nn.Module:
    """The encoder as a straightforward step has it: a VQGAN in contiguous memory running
    taming's blocks as taming wrote them (``fused=False``), its own weights copied; any other
    encoder as it is."""
    network = getattr(network, "_orig_mod", network)  # a compiled encoder: the module it wraps
    if not isinstance(network, VQGANEncoder):
        return network
    plain = VQGANEncoder(network.config, network.input_range, fused=False)
    plain.load_state_dict({k: v.contiguous() for k, v in network.state_dict().items()})
    return plain


def reference_dckd(run: Run) -> tuple[Callable[[], float], float, float]:
    """A straightforward DCKD step (student, teacher, history negatives, encoder, the losses,
    backward, Adam, EMA) written without the engine, in plain contiguous memory, the encoder's
    blocks as taming wrote them (`straightforward`): a function
    taking one step and returning its seconds, its first loss, and the engine's first loss on
    the same weights, inputs and negatives."""
    s, device = run.settings, run.accelerator.device
    res = run.method.resources
    student, teacher, encoder = run.student.to(device), res.teacher, res.encoder
    history = res.history.model.to(device)
    network = straightforward(encoder.network).to(device)
    weights, ce_on = run.method.weights, "ce" in run.method.weights
    negatives = res.negatives
    assert isinstance(negatives, HistoryNegatives)
    g_state = negatives.generator.get_state()
    lq, gt = next(synthetic_batches(run))
    optimizer = torch.optim.Adam(student.parameters(), lr=s.optim.lr, betas=s.optim.betas)
    ema = copy.deepcopy(student).requires_grad_(False)

    def step() -> torch.Tensor:
        out = student(lq)
        with torch.no_grad():
            target = teacher(lq)
            noisy = negative_inputs(lq, s.method.dcl.negatives, negatives.generator)
            negs = history(noisy.flatten(0, 1))
            pos, z_t = network(target, encoder.levels, latents=ce_on)
            neg, _ = network(negs, encoder.levels)
        anchor, z_s = network(out, encoder.levels, latents=ce_on)
        k = noisy.shape[0]
        neg = [f.view(k, lq.shape[0], *f.shape[1:]) for f in neg]
        loss = weights["rec"] * F.l1_loss(out, gt) + weights["kd"] * F.l1_loss(out, target)
        loss = loss + weights["dcl"] * contrastive_loss(anchor, pos, neg, encoder.layer_weights)
        if ce_on:
            loss = loss + weights["ce"] * distribution_loss(z_s, z_t, network.codebook)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), student.parameters()):
                e.lerp_(p, 1 - s.optim.ema_decay)
        return loss.detach()

    start = copy.deepcopy(student.state_dict())
    student.eval()  # the check without stochastic depth (SwinIR draws it in training mode)
    with torch.no_grad():
        engine_loss = float(sum(run.method.loss_terms(lq, gt, student(lq)).values()))
    negatives.generator.set_state(g_state)
    first = float(step())
    student.load_state_dict(start)
    student.train()
    return lambda: synced_seconds(device, step), first, engine_loss


def interleaved(engine: Callable[[], float], reference: Callable[[], float], rounds: int) -> dict[str, float]:
    """Engine and reference steps taken in turn (one warm-up each), so a change in the machine's
    speed falls on both: their medians and the median of the per-round ratio."""
    engine(), reference()
    pairs = [(engine(), reference()) for _ in range(rounds)]
    return {
        "engine": statistics.median(e for e, _ in pairs),
        "reference": statistics.median(r for _, r in pairs),
        "ratio": statistics.median(e / r for e, r in pairs),
    }


MEMORY_VARIANTS = {  # label suffix -> settings: dckd's ways to a smaller step
    "": [],
    "/recompute": ["method.encoder.recompute=true"],
    "/chunk": ["method.encoder.chunk={batch}"],
    "/recompute+chunk": ["method.encoder.recompute=true", "method.encoder.chunk={batch}"],
}


def memory_row(args: argparse.Namespace, encoder: Path, teacher: Path, variant: str) -> dict[str, float | None]:
    """One dckd step at ``--memory-batch`` with a ``MEMORY_VARIANTS`` entry: the MB its graph
    keeps for the backward and the peak memory of the step (CUDA: torch's peak allocation; a
    Linux CPU: the process's peak resident set, so each variant runs in a process of its own)."""
    from dckd_cli.engine.memory import peak_memory_mb, reset_peak_memory, tensor_peak

    wide = argparse.Namespace(**{**vars(args), "batch": args.memory_batch})
    wide.set = [*args.set, *(o.format(batch=args.memory_batch) for o in MEMORY_VARIANTS[variant])]
    run = build_run(settings_for("swinir-x4", "dckd", encoder, teacher, wide))
    device = run.accelerator.device
    stepper = Stepper(run)
    lq, gt = next(synthetic_batches(run))
    reset_peak_memory(device)
    with tensor_peak() as tensors:
        with saved_for_backward() as saved:
            _, loss = stepper.forward(lq, gt)
        loss.backward()
    kept = saved.mb
    return {
        "saved_mb": kept,
        "per_sample_mb": kept / args.memory_batch,
        "tensor_peak_mb": tensors.mb,
        "peak_mem_mb": peak_memory_mb(device),
    }


def memory_rows(args: argparse.Namespace, encoder: Path, teacher: Path) -> dict[str, dict[str, float | None]]:
    """dckd's memory at ``--memory-batch`` with each of ``--memory-variants``, each in a fresh
    process (a peak resident set cannot be shared between rows). A variant that does not fit
    (the process is stopped or its allocation fails) is recorded as such."""
    import multiprocessing

    rows: dict[str, dict[str, float | None]] = {}
    spawn = multiprocessing.get_context("spawn")
    for variant in args.memory_variants.split(","):
        variant = "" if variant == "plain" else f"/{variant}"
        label = f"swinir-x4/dckd/imagenet-size/batch-{args.memory_batch}{variant}"
        with spawn.Pool(1) as pool:
            try:
                row = pool.apply(memory_row, (args, encoder, teacher, variant))
            except (MemoryError, RuntimeError) as err:  # the child's failed allocation
                row = {"saved_mb": None, "per_sample_mb": None, "tensor_peak_mb": None, "peak_mem_mb": None}
                row["failed"] = str(err)[:200]
        rows[label] = row
        if row["saved_mb"] is None:
            print(f"{label}: did not fit ({row['failed']})", flush=True)
            continue
        peak = "" if row["peak_mem_mb"] is None else f", process peak {row['peak_mem_mb']:.0f} MB"
        print(
            f"{label}: {row['saved_mb']:.0f} MB kept for the backward, the step's tensors peak at "
            f"{row['tensor_peak_mb']:.0f} MB{peak}",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the SwinIR pair, batch 2, two encoders, 2 steps")
    parser.add_argument("--shared", type=Path, default=Path("../shared"), help="for the tiny-autoencoder's shape")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--precision", default="no", choices=PRECISIONS)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[], help="a settings override for every row (switches)")
    parser.add_argument("--methods", default=None, help="comma-separated subset of the methods")
    parser.add_argument("--encoders", default=None, help="comma-separated subset: compact, imagenet-size, tiny-ae-size")
    parser.add_argument(
        "--memory-batch",
        type=int,
        default=None,
        help="also dckd's memory at this batch, with each of --memory-variants (default: 16 on CUDA, 4 on the "
        "CPU; none with --quick)",
    )
    parser.add_argument(
        "--memory-variants",
        default="plain,recompute,chunk,recompute+chunk",
        help="comma-separated: plain, recompute (method.encoder.recompute), chunk (method.encoder.chunk = the "
        "batch), recompute+chunk",
    )
    parser.add_argument(
        "--row",
        action="append",
        default=[],
        help="NAME|SWITCHES: measure once per row in this process (SWITCHES: --precision P and --set K=V, as "
        "for the whole command), each row's record written to --json-dir/step-NAME.json as it ends",
    )
    parser.add_argument("--json-dir", type=Path, default=None, help="where --row records go")
    args = parser.parse_args()
    args.batch = args.batch or (2 if args.quick else 16)
    if args.memory_batch is None and not args.quick:
        # batch 16's frozen passes alone need about 24 GB in float32: on the CPU a smaller
        # batch, whose kept activations scale to batch 16's (per_sample_mb)
        args.memory_batch = 16 if torch.cuda.is_available() else 4
    steps = args.steps or (2 if args.quick else 5)
    if not args.row:
        record = measure(args, steps)
        report(record, args)
        if args.json:
            args.json.write_text(json.dumps(record, indent=2) + "\n")
        return
    if args.json_dir is None:
        parser.error("--row needs --json-dir")
    args.json_dir.mkdir(parents=True, exist_ok=True)
    for name, row in row_arguments(args):
        print(f"== row {name}: precision {row.precision}, set {row.set}", flush=True)
        try:
            record = measure(row, steps)
        except Exception as err:  # noqa: BLE001 - one row's failure (a compile error, memory) ends that row only
            print(f"FAILED: row {name}: {type(err).__name__}: {str(err)[:300]}", flush=True)
            continue
        report(record, row)
        (args.json_dir / f"step-{name}.json").write_text(json.dumps(record, indent=2) + "\n")


def row_arguments(args: argparse.Namespace) -> list[tuple[str, argparse.Namespace]]:
    """``--row NAME|SWITCHES`` as the command's arguments with the row's precision and switches."""
    rows = []
    for spec in args.row:
        name, _, switches = spec.partition("|")
        sub = argparse.ArgumentParser(prog=f"--row {name}")
        sub.add_argument("--precision", default=args.precision, choices=PRECISIONS)
        sub.add_argument("--set", action="append", default=[])
        parsed = sub.parse_args(shlex.split(switches))
        row = argparse.Namespace(**{**vars(args), "precision": parsed.precision, "set": [*args.set, *parsed.set]})
        row.memory_batch = None  # the memory rows are a command of their own
        rows.append((name, row))
    return rows


def measure(args: argparse.Namespace, steps: int) -> dict[str, object]:
    """Every row of the benchmark under ``args``' precision and switches."""
    pairs = ["swinir-x4"] if args.quick else list(PAIRS)
    record: dict[str, object] = {"device": "", "setting": {}, "methods": {}, "reference_dckd": {}}
    with tempfile.TemporaryDirectory(prefix="dckd-step-bench-") as tmp:
        encoders = {"compact": None, "imagenet-size": random_imagenet_encoder(Path(tmp) / "imagenet.safetensors")}
        tiny = random_tiny_ae(Path(tmp) / "tiny-ae.safetensors", args.shared / "weights" / "taesana_encoder.pth")
        if tiny is not None and not args.quick:
            encoders["tiny-ae-size"] = tiny
        if args.quick:
            encoders.pop("compact")
        for pair in pairs:
            arch, scale = PAIRS[pair]
            teacher = random_teacher(arch, scale, Path(tmp) / f"{pair}-teacher.safetensors")
            methods = args.methods.split(",") if args.methods else list(METHODS)
            chosen = [e for e in encoders if args.encoders is None or e in args.encoders.split(",")]
            rows = [(m, None) for m in methods if not m.startswith("dckd")]
            rows += [(m, e) for m in methods if m.startswith("dckd") for e in chosen]
            for method, enc in rows:
                label = f"{pair}/{method}" + (f"/{enc}" if enc else "")
                run = fresh = reference = None  # noqa: F841 - dropped before the collection
                release_memory()  # the previous row's networks and graphs, before this row's peak
                run = build_run(settings_for(pair, method, encoders.get(enc) if enc else None, teacher, args))
                device = run.accelerator.device
                record["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
                flops, kept = step_costs(run)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                # the reference runs in full precision: timed beside the engine's step in full-precision rows only
                exact = args.precision == "no" and not run.settings.runtime.frozen_bf16
                if method != "dckd" or not exact:
                    seconds = time_steps(run, steps)
                else:  # timed in turn with the reference step
                    fresh = build_run(settings_for(pair, method, encoders.get(enc) if enc else None, teacher, args))
                    reference, ref_loss, engine_loss = reference_dckd(fresh)
                    # the same losses: to 1e-5, or to TF32's rounding where CUDA's matmuls use it
                    tf32 = device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
                    tol = 5e-3 if tf32 else 1e-5
                    assert abs(ref_loss - engine_loss) <= tol * max(1.0, abs(engine_loss)), (ref_loss, engine_loss)
                    turns = interleaved(step_clock(run), reference, steps)
                    seconds = turns["engine"]
                    record["reference_dckd"][label] = {
                        "sec_per_iter": turns["reference"],
                        "ratio": turns["ratio"],
                        "loss": ref_loss,
                        "engine_loss": engine_loss,
                    }
                    ratio = turns["ratio"]
                    print(f"{label}: reference {turns['reference']:.3f} s/step (dckd x{ratio:.2f})", flush=True)
                record["methods"][label] = {
                    "sec_per_iter": seconds,
                    "gflop": flops,
                    "peak_mem_mb": peak_mb(device),
                    "saved_mb": kept,
                }
                print(f"{label}: {seconds:.3f} s/step, {flops:.1f} GFLOP, {kept:.0f} MB kept for backward", flush=True)
            if args.memory_batch and pair == "swinir-x4":
                record["memory"] = memory_rows(args, encoders["imagenet-size"], teacher)
    record["setting"] = {
        "batch": args.batch,
        "patch": args.patch,
        "precision": args.precision,
        "steps": steps,
        "set": args.set,
    }
    return record


def report(record: dict, args: argparse.Namespace) -> None:
    """The table of ``record`` (``measure``), its reference ratios and memory rows."""
    print(f"\ndevice: {record['device']}, torch {torch.__version__}, batch {args.batch}, patch {args.patch}")
    print("| row | s / step | GFLOP | time / logits | FLOP / logits | kept for backward MB | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for label, r in record["methods"].items():
        base = record["methods"].get(label.split("/")[0] + "/logits", r)
        peak = "" if r["peak_mem_mb"] is None else f"{r['peak_mem_mb']:.0f}"
        print(
            f"| {label} | {r['sec_per_iter']:.3f} | {r['gflop']:.1f} | {r['sec_per_iter'] / base['sec_per_iter']:.2f} "
            f"| {r['gflop'] / base['gflop']:.2f} | {r['saved_mb']:.0f} | {peak} |"
        )
    for label, r in record["reference_dckd"].items():
        print(f"{label}: the engine's step is {r['ratio']:.2f}x the reference step's time (steps in turn)")
    for label, r in record.get("memory", {}).items():
        if r["saved_mb"] is None:
            print(f"{label}: did not fit")
            continue
        peak = "" if r["peak_mem_mb"] is None else f", process peak {r['peak_mem_mb']:.0f} MB"
        at16 = 16 / args.memory_batch
        print(
            f"{label}: {r['saved_mb']:.0f} MB kept for the backward, tensors' peak {r['tensor_peak_mb']:.0f} MB"
            f"{peak}; at batch 16: {r['saved_mb'] * at16:.0f} MB kept, {r['tensor_peak_mb'] * at16:.0f} MB peak"
        )


if __name__ == "__main__":
    main()
