"""Weight initialisers. Each is a small value object; ``sample`` draws (n_pre, n_post) float32."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snncc.errors import ModelError, ShapeError
from snncc.model.equations import FLOAT32_MAX
from snncc.model.values import check_number


@dataclass(frozen=True)
class Constant:
    value: float = 0.0

    def __post_init__(self) -> None:
        check_number(self.value, f"{self}: value")

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return np.full(shape, self.value, dtype=np.float32)


@dataclass(frozen=True)
class Normal:
    mean: float = 0.0
    sd: float = 1.0

    def __post_init__(self) -> None:
        check_number(self.mean, f"{self}: mean")
        check_number(self.sd, f"{self}: sd", minimum=0, hint="give e.g. sd=0.1")

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return rng.normal(self.mean, self.sd, size=shape).astype(np.float32)


@dataclass(frozen=True)
class Uniform:
    low: float = -1.0
    high: float = 1.0

    def __post_init__(self) -> None:
        check_number(self.low, f"{self}: low")
        check_number(self.high, f"{self}: high")
        if self.low > self.high:
            raise ModelError(f"{self}: low must be <= high; swap them")

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=shape).astype(np.float32)


Initializer = Constant | Normal | Uniform


def resolve(
    spec: object, shape: tuple[int, int], rng: np.random.Generator, where: str
) -> np.ndarray:
    """Turn an initialiser, a number or an array into a finite float32 (n_pre, n_post) array.

    Nothing is coerced silently: bools and complex numbers are rejected, integers are accepted
    only when float32 holds them exactly, and values beyond float32's range are an error.
    """
    if isinstance(spec, (Constant, Normal, Uniform)):
        w = spec.sample(shape, rng)
    elif isinstance(spec, (bool, np.bool_)):
        raise ModelError(f"{where}: weight {spec!r} is a bool; give a number such as 1.0")
    elif isinstance(spec, (int, np.integer)):
        w = np.full(shape, _int_float32(int(spec), where), dtype=np.float32)
    elif isinstance(spec, (float, np.floating)):
        w = as_float32(np.full(shape, spec), where)
    elif isinstance(spec, np.ndarray):
        if spec.shape != shape:
            hint = ""
            if spec.shape == shape[::-1]:
                hint = " (the transpose; weights are indexed [pre, post])"
            raise ShapeError(
                f"{where}: weight array has shape {spec.shape}, expected (n_pre, n_post) = "
                f"{shape}{hint}"
            )
        if not np.issubdtype(spec.dtype, np.floating) and not np.issubdtype(spec.dtype, np.integer):
            raise ShapeError(f"{where}: weight array has dtype {spec.dtype}; give real numbers")
        w = as_float32(spec, where)
    else:
        raise ModelError(
            f"{where}: cannot use {spec!r} as weights; give init.Constant/Normal/Uniform, "
            "a number or a NumPy array"
        )
    if not np.all(np.isfinite(w)):
        i, j = map(int, np.argwhere(~np.isfinite(w))[0])
        raise ModelError(
            f"{where}: weights contain NaN or inf (first at [{i}, {j}]); give finite weights"
        )
    return w


def as_float32(values: np.ndarray, where: str) -> np.ndarray:
    """float32 copy of a real array; exact for integers, finite where the input is finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        w = values.astype(np.float32)
    if np.issubdtype(values.dtype, np.integer):
        exact = w.astype(np.float64) == values
        if not np.all(exact):
            i, j = map(int, np.argwhere(~exact)[0])
            raise ModelError(
                f"{where}: integer weight [{i}, {j}] = {values[i, j]} has no exact float32 value "
                f"(it would become {float(w[i, j]):.9g}); give float weights"
            )
    overflow = np.isinf(w) & np.isfinite(values)
    if overflow.any():
        i, j = map(int, np.argwhere(overflow)[0])
        raise ModelError(
            f"{where}: weight [{i}, {j}] = {values[i, j]} is too large for float32 "
            f"(max {FLOAT32_MAX:.3g}); scale the weights down"
        )
    return w


def _int_float32(value: int, where: str) -> np.float32:
    """float32 of an integer weight, which must be exact."""
    try:
        f = float(value)
    except OverflowError:
        f = float("inf")
    with np.errstate(over="ignore"):
        w = np.float32(f)
    if not np.isfinite(w):
        raise ModelError(f"{where}: weight {value} is too large for float32; scale it down")
    if int(w) != value:
        raise ModelError(
            f"{where}: integer weight {value} has no exact float32 value (it would become "
            f"{float(w):.9g}); give a float weight"
        )
    return w
