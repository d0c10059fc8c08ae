"""dckd: knowledge distillation for image restoration."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dckd")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
