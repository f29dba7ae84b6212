"""Weight initialisers. Each is a small value object; ``sample`` draws (n_pre, n_post) float32."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snncc.errors import ModelError, ShapeError


@dataclass(frozen=True)
class Constant:
    value: float = 0.0

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return np.full(shape, self.value, dtype=np.float32)


@dataclass(frozen=True)
class Normal:
    mean: float = 0.0
    sd: float = 1.0

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return rng.normal(self.mean, self.sd, size=shape).astype(np.float32)


@dataclass(frozen=True)
class Uniform:
    low: float = -1.0
    high: float = 1.0

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=shape).astype(np.float32)


Initializer = Constant | Normal | Uniform


def resolve(spec: object, shape: tuple[int, int], rng: np.random.Generator, where: str) -> np.ndarray:
    """Turn an initialiser, a number or an array into a finite float32 (n_pre, n_post) array."""
    if isinstance(spec, (Constant, Normal, Uniform)):
        w = spec.sample(shape, rng)
    elif isinstance(spec, (int, float)) and not isinstance(spec, bool):
        w = np.full(shape, spec, dtype=np.float32)
    elif isinstance(spec, np.ndarray):
        if spec.shape != shape:
            raise ShapeError(
                f"{where}: weight array has shape {spec.shape}, expected (n_pre, n_post) = {shape}"
            )
        if not np.issubdtype(spec.dtype, np.floating) and not np.issubdtype(spec.dtype, np.integer):
            raise ShapeError(f"{where}: weight array has dtype {spec.dtype}; give real numbers")
        w = spec.astype(np.float32)
    else:
        raise ModelError(
            f"{where}: cannot use {spec!r} as weights; give init.Constant/Normal/Uniform, "
            "a number or a NumPy array"
        )
    if not np.all(np.isfinite(w)):
        raise ModelError(f"{where}: weights contain NaN or inf")
    return w
