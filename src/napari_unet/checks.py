"""Argument checks shared by the whole package: one rule per kind of value.

Every message names the argument, says what it must be and shows what it got, so the
command line and the widgets can show it as it is.
"""

from __future__ import annotations

import numpy as np


def check_choice(name: str, value, choices) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def is_integer(value) -> bool:
    """True for Python and numpy integers, False for bools and everything else."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def check_positive_int(name: str, value, *, minimum: int = 1, optional: bool = False) -> None:
    """Raise unless ``value`` is an integer >= ``minimum`` (or None when ``optional``)."""
    if optional and value is None:
        return
    if not is_integer(value) or value < minimum:
        allowed = " or None" if optional else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{allowed}, got {value!r}")


def _is_finite_number(value) -> bool:
    """True for finite Python and numpy ints and floats (not bools)."""
    return (not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
            and bool(np.isfinite(value)))


def check_positive_number(name: str, value, *, optional: bool = False) -> None:
    """Raise unless ``value`` is a finite number > 0 (or None when ``optional``)."""
    if optional and value is None:
        return
    if not _is_finite_number(value) or value <= 0:
        allowed = " or None" if optional else ""
        raise ValueError(f"{name} must be a positive number{allowed}, got {value!r}")


def check_non_negative_number(name: str, value, *, optional: bool = False) -> None:
    """Raise unless ``value`` is a finite number >= 0 (or None when ``optional``)."""
    if optional and value is None:
        return
    if not _is_finite_number(value) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def check_bool(name: str, value) -> None:
    """Raise unless ``value`` is True or False."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_probability(name: str, value) -> None:
    """Raise unless ``value`` is in [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def check_open_probability(name: str, value, *, optional: bool = False) -> None:
    """Raise unless ``value`` is a number in the open interval (0, 1) (or None when ``optional``)."""
    if optional and value is None:
        return
    if not _is_finite_number(value) or not 0 < value < 1:
        allowed = " or None" if optional else ""
        raise ValueError(f"{name} must be in (0, 1){allowed}, got {value!r}")


def check_interval(name: str, interval, minimum: float) -> None:
    """Raise unless ``interval`` is ``(low, high)`` with ``minimum <= low <= high``."""
    if len(interval) != 2 or not minimum <= interval[0] <= interval[1]:
        raise ValueError(f"{name} must be an interval (low, high) with {minimum} <= low <= high, got {interval!r}")


def check_channel(value) -> None:
    """A channel index (>= 0), distinct indices in a tuple, or None."""
    if isinstance(value, tuple):
        if not value or len(set(value)) != len(value):
            raise ValueError(f"channel must be distinct channel indices, got {value!r}")
        for index in value:
            check_positive_int("channel", index, minimum=0)
    else:
        check_positive_int("channel", value, minimum=0, optional=True)


def check_axes(axes, letters: str) -> None:
    """None, or distinct axis letters out of ``letters``."""
    if axes is not None and (not isinstance(axes, str) or not axes or set(axes) - set(letters)
                             or len(set(axes)) != len(axes)):
        raise ValueError(f"axes must be distinct letters of {letters!r} such as 'YX' or 'CYX', got {axes!r}")


def check_labels(labels, name: str = "labels", *, ndim: int | None = None) -> np.ndarray:
    """Return ``labels`` as a non-negative integer ndarray, or raise naming ``name``.

    The one rule for instance labels everywhere (training, weight maps, augmentation,
    metrics, the command line): bool masks become uint8; floats holding only whole numbers
    (labels saved by tools that write float images) become int64; integers must be >= 0.

    Parameters
    ----------
    labels : array-like of bool, int or whole-numbered float
    name : str
        How the argument is called in error messages.
    ndim : int, optional
        Required number of dimensions.

    Raises
    ------
    ValueError
        Fractional, NaN, infinite or negative values, a non-numeric dtype, or the wrong
        number of dimensions.
    """
    array = np.asarray(labels)
    if ndim is not None and array.ndim != ndim:
        axes = {2: " (Y, X)", 3: " (Z, Y, X)"}.get(ndim, "")
        raise ValueError(f"{name} must be {ndim}-D{axes}, got shape {array.shape}")
    if array.dtype.kind == "b":
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(f"{name} must hold integers (0 = background, k = cell k), got NaN or infinite values")
        fractional = array[array != np.round(array)]
        if fractional.size:
            raise ValueError(f"{name} must hold integers (0 = background, k = cell k), got {array.dtype} "
                             f"values with fractions (e.g. {fractional.flat[0]:g})")
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers (0 = background, k = cell k), got dtype {array.dtype}")
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise ValueError(f"{name} must not be negative (min {array.min()})")
    return array


def check_mask(mask, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A bool array of ``shape`` (all False for None), or raise naming ``name``."""
    if mask is None:
        return np.zeros(shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have the shape {tuple(shape)}, got {mask.shape}")
    return mask.astype(bool)
