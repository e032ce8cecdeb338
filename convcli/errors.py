"""The exceptions convcli raises for bad input and failed work."""

from __future__ import annotations


class ConvcliError(Exception):
    """Base class of every error convcli raises on purpose."""


class ShapeError(ConvcliError, ValueError):
    """Arrays whose shapes do not fit together (x, w, bias, padding)."""


class KernelError(ConvcliError, ValueError):
    """A kernel spec, file or parameter that cannot be read: says where and why."""
