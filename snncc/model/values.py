"""Checks of the numeric options users pass (dt, seeds, initialisers, rule and optimiser options).

Nothing is coerced silently: a bool, a string or a NaN is refused with a message that names the
option, rather than failing later inside NumPy or being printed as ``inf`` in a float32 kernel.
"""

from __future__ import annotations

import numbers

import numpy as np

from snncc.errors import ModelError
from snncc.model.equations import FLOAT32_MAX


def check_number(
    value: object,
    what: str,
    *,
    minimum: float | None = None,
    exclusive: bool = False,
    integer: bool = False,
    hint: str = "",
) -> float | int:
    """``value`` if it is a real number (an integer with ``integer``) within float32's range and
    ``>= minimum`` (``> minimum`` with ``exclusive``), else a ModelError naming ``what``."""
    if integer:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    else:
        ok = (
            isinstance(value, numbers.Real)
            and not isinstance(value, (bool, np.bool_))
            and bool(np.isfinite(value))
            and abs(value) <= FLOAT32_MAX
        )
    if ok and minimum is not None:
        ok = value > minimum if exclusive else value >= minimum
    if not ok:
        if isinstance(value, numbers.Real) and np.isfinite(value) and abs(value) > FLOAT32_MAX:
            wanted = f"within float32's range (+-{FLOAT32_MAX:.3g}), which the kernels use"
        elif integer:
            wanted = "an integer" + ("" if minimum is None else f" >= {minimum:g}")
        elif minimum == 0 and exclusive:
            wanted = "a positive finite number"
        else:
            bound = "" if minimum is None else f" {'>' if exclusive else '>='} {minimum:g}"
            wanted = f"a finite number{bound}"
        raise ModelError(f"{what} must be {wanted}, got {value!r}{'; ' + hint if hint else ''}")
    return value
