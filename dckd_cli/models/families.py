"""Any network family spandrel knows, built by name with its constructor's options, and the
user's own model, built by a callable named ``package.module:function``.

``build_family("SPAN", {"feature_channels": 48}, scale=4)`` imports spandrel's network class,
checks every option against its constructor (an unknown name lists the valid ones with their
defaults; a value of the wrong type names the option), fills in the scale and the RGB channel
counts where the constructor takes them, builds it, and asks spandrel to describe the result
from its weights: the purpose (super-resolution or restoration), the scale, the channels and
the input sizes it needs. A family that cannot do the run's task or scale is refused in one
line. A user callable gets ``options`` as keyword arguments and must return an ``nn.Module``;
it is imported, never unpickled. Every network is then run once on a small input
(:func:`check_on_dummy`) before any run starts.
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from torch import nn

from dckd_cli.catalog.architectures import MODEL_ARCHS
from dckd_cli.errors import DckdError

# Constructor arguments dckd fills in from the run (a user's option never overrides them).
SCALE_NAMES = ("upscale", "upscale_factor", "up_scale", "upscaling_factor", "scale")
IN_CHANNEL_NAMES = ("num_in_ch", "in_channels", "in_chans", "in_nc", "inp_channels", "img_channel", "in_ch", "n_colors")
OUT_CHANNEL_NAMES = ("num_out_ch", "out_channels", "out_chans", "out_nc", "out_ch")
FILLED = (*SCALE_NAMES, *IN_CHANNEL_NAMES, *OUT_CHANNEL_NAMES)
PURPOSES = {"SR": "super-resolution", "Restoration": "restoration"}  # spandrel purposes dckd can train
USER_PATTERN = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class FamilyError(DckdError):
    """A family, option or user model that cannot be built for the run."""


def is_user_model(arch: str) -> bool:
    """``package.module:function``: a callable of the user's that returns the network."""
    return bool(USER_PATTERN.fullmatch(arch))


@cache
def _supports() -> dict[str, Any]:
    """spandrel's architectures (and spandrel-extra-arches'), by lower-case id."""
    from spandrel import MAIN_REGISTRY
    from spandrel_extra_arches import install

    install(ignore_duplicates=True)
    return {support.architecture.id.lower(): support for support in MAIN_REGISTRY.architectures()}


def family_names() -> list[str]:
    return sorted(support.architecture.id for support in _supports().values())


def family_id(name: str) -> str | None:
    """spandrel's spelling of ``name`` (any case), or None when spandrel has no such family."""
    support = _supports().get(name.lower())
    return support.architecture.id if support is not None else None


def options_key(where: str) -> str:
    """The options setting beside an arch setting: ``student.arch`` -> ``student.options``."""
    return where.removesuffix(".arch") + ".options"


def network_class(name: str, where: str = "arch") -> type[nn.Module]:
    """The network class of spandrel's family ``name`` (the class its package names after it)."""
    fid = family_id(name)
    if fid is None:
        raise FamilyError(
            f"{where}: unknown architecture '{name}': use {', '.join(MODEL_ARCHS)}, a spandrel family "
            "(`dckd models` lists them) or package.module:function"
        )
    support = _supports()[fid.lower()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = importlib.import_module(type(support.architecture).__module__)  # the family's package
    cls = getattr(module, fid, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise FamilyError(
            f"{fid}: spandrel builds this family from checkpoints only (no single network class to build by name); "
            "use one of its checkpoints as a teacher (arch auto) or another family as a student"
        )
    return cls


@dataclass(frozen=True)
class Option:
    name: str
    default: Any  # inspect.Parameter.empty when the constructor requires it
    annotation: Any  # a type, or None when the constructor does not say

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def shown(self) -> str:
        if self.required:
            return f"{self.name} (required)"
        shown = repr(self.default)
        return f"{self.name}={shown if len(shown) <= 40 else shown[:37] + '...'}"


def constructor_options(builder: Any) -> dict[str, Option]:
    """The keyword arguments of a class's constructor or a function, with defaults and types."""
    target = builder.__init__ if isinstance(builder, type) else builder
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: check by the default's type
        hints = {}
    options = {}
    for name, param in inspect.signature(target).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        options[name] = Option(name, param.default, hints.get(name))
    return options


def _check_value(option: Option, value: Any, where: str) -> Any:
    """``value`` as the option's type (its annotation, else its default's type), or one line."""
    from pydantic import TypeAdapter, ValidationError

    expected: Any = option.annotation
    if expected is None and not option.required and option.default is not None:
        expected = type(option.default)
        if expected is float:
            expected = float | int
        elif expected is tuple:
            expected = list | tuple
    if expected is None:
        return value
    try:
        TypeAdapter(expected).validate_python(value, strict=True)
    except ValidationError:
        name = getattr(expected, "__name__", str(expected))
        raise FamilyError(f"{where}.{option.name}: expected {name}, got {value!r}") from None
    except Exception:  # noqa: BLE001 - an annotation pydantic cannot check: the constructor will
        return value
    return value


def checked_options(builder: Any, options: dict[str, Any], label: str, where: str) -> dict[str, Any]:
    """``options`` checked against ``builder``'s signature (``where``: the setting, for messages)."""
    known = constructor_options(builder)
    for key, value in options.items():
        if key not in known:
            valid = ", ".join(o.shown() for o in known.values() if o.name not in FILLED)
            raise FamilyError(f"{where}.{key}: {label} has no option '{key}'; its options: {valid}")
        if key in FILLED:
            raise FamilyError(f"{where}.{key}: set by dckd from the run (scale and RGB channels); drop it")
        _check_value(known[key], value, where)
    missing = [o.name for o in known.values() if o.required and o.name not in options and o.name not in FILLED]
    if missing:
        raise FamilyError(f"{where}: {label} needs {', '.join(missing)}; set {where}.{missing[0]}")
    return options


def _filled(builder: Any, scale: int) -> dict[str, Any]:
    known = constructor_options(builder)
    fill = {name: scale for name in SCALE_NAMES if name in known}
    fill |= {name: 3 for name in (*IN_CHANNEL_NAMES, *OUT_CHANNEL_NAMES) if name in known}
    return fill


@dataclass(frozen=True)
class Built:
    """A built network and what running it needs."""

    model: nn.Module
    multiple: int = 1  # inputs padded to this multiple
    minimum: int = 0  # the smallest input side it takes


def build_family(name: str, options: dict[str, Any], scale: int, where: str) -> Built:
    """spandrel's family ``name`` with ``options``; refused when it cannot restore at ``scale``."""
    cls = network_class(name, where)
    fid = family_id(name)
    options = checked_options(cls, options, fid or name, options_key(where))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = cls(**{**options, **_filled(cls, scale)})
        except Exception as err:  # noqa: BLE001 - the constructor's own refusal, in one line
            raise FamilyError(f"{where}: {fid} does not build with these options ({_first_line(err)})") from None
    return describe(model, fid or name, scale, where)


def describe(model: nn.Module, label: str, scale: int, where: str) -> Built:
    """Ask spandrel what ``model`` is (from its weights): refuse a purpose or scale the run cannot
    use; the input multiple and minimum it needs."""
    from spandrel import ModelLoader

    _supports()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            descriptor = ModelLoader().load_from_state_dict(model.state_dict())
    except Exception:  # noqa: BLE001 - unrecognised, or recognised but not buildable: trust the dummy check
        return Built(model)
    purpose = getattr(descriptor, "purpose", None)
    if purpose not in PURPOSES:
        raise FamilyError(f"{where}: {label} is a {purpose} model; dckd trains super-resolution and restoration")
    if descriptor.scale != scale:
        fixed = "restores at scale 1" if descriptor.scale == 1 else f"upscales x{descriptor.scale}"
        raise FamilyError(f"{where}: {label} {fixed} with these options; the run is x{scale}")
    if (descriptor.input_channels, descriptor.output_channels) != (3, 3):
        raise FamilyError(
            f"{where}: {label} maps {descriptor.input_channels} to {descriptor.output_channels} channels; "
            "dckd trains RGB to RGB"
        )
    need = descriptor.size_requirements
    return Built(model, int(need.multiple_of or 1), int(need.minimum or 0))


def build_user(arch: str, options: dict[str, Any], scale: int, where: str) -> Built:
    """The network ``package.module:function(**options)`` returns (imported, never unpickled);
    a parameter named like a scale (``scale``, ``upscale``, ...) or RGB channels is filled in
    from the run, as for spandrel's families. The model may state ``pad_multiple`` (an int
    attribute) when its inputs must be padded."""
    module_name, _, attr = arch.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - ImportError, or the module's own error at import
        raise FamilyError(
            f"{where}: cannot import {module_name} ({_first_line(err)}); install the package or add its folder "
            "to PYTHONPATH"
        ) from None
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise FamilyError(f"{where}: {module_name} has no callable '{attr}'")
    options = checked_options(builder, options, arch, options_key(where))
    try:
        model = builder(**options, **_filled(builder, scale))
    except Exception as err:  # noqa: BLE001 - the user's code refusing its options
        raise FamilyError(f"{where}: {arch}(...) failed ({_first_line(err)})") from None
    if not isinstance(model, nn.Module):
        raise FamilyError(f"{where}: {arch} returned {type(model).__name__}, not a torch.nn.Module")
    multiple = getattr(model, "pad_multiple", 1)
    if not isinstance(multiple, int) or multiple < 1:
        raise FamilyError(f"{where}: {arch}'s model has pad_multiple {multiple!r}; it must be a positive int")
    return Built(model, multiple)


def dummy_side(multiple: int, minimum: int = 0) -> int:
    """The side of the small square input a network is tried on: at least 16 and its minimum,
    a multiple of what it pads to."""
    side = max(16, minimum, multiple)
    return side + (-side) % multiple


@torch.no_grad()
def check_on_dummy(built: Built, scale: int, label: str, where: str) -> None:
    """Run the network once on a small RGB input in [0, 1]: it must give a finite RGB output
    ``scale`` times larger, or the run is refused before it starts."""
    side = dummy_side(built.multiple, built.minimum)
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    model = built.model
    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        out = model(x.to(device))
    except Exception as err:  # noqa: BLE001 - any failure of the forward pass, in one line
        raise FamilyError(f"{where}: {label} fails on a {side}x{side} RGB input ({_first_line(err)})") from None
    finally:
        model.train(was_training)
    expected = (1, 3, side * scale, side * scale)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise FamilyError(
            f"{where}: {label} maps a {side}x{side} RGB input to {got}; dckd needs {expected} (x{scale}, RGB)"
        )
    if not bool(torch.isfinite(out).all()):
        raise FamilyError(f"{where}: {label} gives non-finite values on a {side}x{side} input")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:160]
