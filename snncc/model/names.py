"""What a name in a model spec may be.

Every population, projection, parameter and state name becomes part of a C/CUDA identifier in
generated code (``hidden_v``, ``update_hidden``, ``grad_in_hid``). So a name is checked here,
where it is declared, against the rule every backend can honour: ASCII letters, digits and
``_``, starting with a letter, no ``__`` (reserved in C and C++), not a C++ or CUDA keyword.
Free text (a neuron model's name, equation strings) never becomes an identifier; it reaches
generated code only through ``snncc.codegen.names.comment``.
"""

from __future__ import annotations

import re

from snncc.errors import ModelError

#: C++17 keywords, plus identifiers CUDA and the C library reserve in every translation unit.
RESERVED_WORDS = frozenset(
    """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t
char16_t char32_t class compl concept const consteval constexpr constinit const_cast continue
co_await co_return co_yield decltype default delete do double dynamic_cast else enum explicit
export extern false float for friend goto if inline int long mutable namespace new noexcept not
not_eq nullptr operator or or_eq private protected public register reinterpret_cast requires
restrict return short signed sizeof static static_assert static_cast struct switch template this
thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
wchar_t while xor xor_eq main NULL threadIdx blockIdx blockDim gridDim warpSize dim3""".split()
)

MAX_LENGTH = 64
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def check_name(name: object, what: str) -> str:
    """``name`` if it is usable as (part of) an identifier in every backend, else ModelError.

    ``what`` names the thing being declared, e.g. ``"population"`` or ``"neuron model 'LIF':
    parameter"``; the message says what is wrong and what to write instead.
    """
    if not isinstance(name, str):
        raise ModelError(f"{what} name {name!r} must be a string such as 'hidden'")
    shown = ascii(name)
    if not _IDENTIFIER.match(name):
        hint = "use ASCII letters, digits and '_', starting with a letter (e.g. 'hidden_1')"
        if name[:1] == "_":
            hint = "names starting with '_' are reserved for snncc; drop the leading '_'"
        raise ModelError(f"{what} name {shown} is not allowed: {hint}")
    if "__" in name:
        raise ModelError(
            f"{what} name {shown} contains '__', which C and C++ reserve; use a single '_'"
        )
    if name in RESERVED_WORDS:
        raise ModelError(f"{what} name {shown} is a C++/CUDA keyword; rename it (e.g. '{name}_1')")
    if len(name) > MAX_LENGTH:
        raise ModelError(f"{what} name {shown} is longer than {MAX_LENGTH} characters; shorten it")
    return name
