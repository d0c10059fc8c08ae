from __future__ import annotations

import os
import pickle
import sys
import types
from pathlib import Path

import pytest
import torch

from dckd_cli.models.checkpoints import CheckpointError, read_state_dict


def _training_checkpoint(path: Path, monkeypatch: pytest.MonkeyPatch, extra: object) -> dict[str, torch.Tensor]:
    """A Lightning-style file: callbacks keyed by a class, a hyper-parameter object, the weights."""
    module = types.ModuleType("trainer_callbacks")

    class ModelCheckpoint:
        pass

    class Config:
        def __init__(self) -> None:
            self.content = {"embed_dim": 256, "lr": 4.5e-6}

    for cls in (ModelCheckpoint, Config):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    weights = {"encoder.conv_in.weight": torch.randn(4, 3, 3, 3), "quant_conv.bias": torch.randn(4)}
    monkeypatch.setitem(sys.modules, HOOKS.__name__, HOOKS)
    torch.save(
        {
            "epoch": 3,
            "state_dict": weights,
            "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(0.5)}},
            "hyper_parameters": Config(),
            "extra": extra,
        },
        path,
    )
    monkeypatch.delitem(sys.modules, module.__name__)  # the reader must not need the library
    monkeypatch.delitem(sys.modules, HOOKS.__name__)
    return weights


def test_training_checkpoint_with_foreign_classes_gives_its_weights(tmp_path: Path, monkeypatch):
    path = tmp_path / "last.ckpt"
    weights = _training_checkpoint(path, monkeypatch, extra=None)
    with pytest.raises(Exception, match="Unsupported global"):
        torch.load(path, map_location="cpu", weights_only=True)  # what the plain loader does
    state = read_state_dict(path)
    assert state.keys() == weights.keys()
    assert all(torch.equal(state[k], weights[k]) for k in weights)


def _touch(path: str) -> None:
    Path(path).touch()


_touch.__module__, _touch.__qualname__ = "trainer_hooks", "touch"
HOOKS = types.ModuleType("trainer_hooks")
HOOKS.touch = _touch


class _Payload:
    """Unpickling this calls a function of the file's choosing."""

    def __init__(self, marker: Path, function=_touch):
        self.marker, self.function = marker, function

    def __reduce__(self):
        return (self.function, (str(self.marker),))


def test_a_function_named_by_the_file_is_never_called(tmp_path: Path, monkeypatch):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.ckpt"
    weights = _training_checkpoint(path, monkeypatch, extra=_Payload(marker))
    monkeypatch.setitem(sys.modules, HOOKS.__name__, HOOKS)  # importable, and still not called
    state = read_state_dict(path)
    assert not marker.exists()
    assert torch.equal(state["quant_conv.bias"], weights["quant_conv.bias"])


def test_blocked_modules_and_object_only_files_are_one_line_errors(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, HOOKS.__name__, HOOKS)
    torch.save({"params": {"w": torch.zeros(1)}, "x": _Payload(tmp_path / "ran", os.system)}, tmp_path / "a.pth")
    with pytest.raises(CheckpointError, match=r"a.pth: cannot be read as weights .*asks for posix\.system") as err:
        read_state_dict(tmp_path / "a.pth")
    assert "weights_only" not in str(err.value)  # never the advice to load unsafely
    torch.save({"model": _Payload(tmp_path / "ran")}, tmp_path / "b.pth")
    with pytest.raises(CheckpointError, match="b.pth: no state dict of tensors"):
        read_state_dict(tmp_path / "b.pth")
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("content", [pickle.dumps({"a": [1, 2, 3]}), bytes(range(256)) * 20])
def test_a_raw_pickle_or_random_bytes_is_one_plain_line(tmp_path: Path, content: bytes):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        read_state_dict(path)
    text = str(err.value)
    assert "\n" not in text and "weights_only" not in text and len(text) < 300, text
    assert "weights.pth: cannot be read as weights" in text and "state_dict()" in text
