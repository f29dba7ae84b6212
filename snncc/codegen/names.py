"""Names and text in generated source: the templates' folder, the identifiers they use, and the
one function through which free text (model names, equations as written) reaches a comment.

Kept apart from the printer and the renderer, which both need it (no import cycle between them).
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

from snncc.model.names import RESERVED_WORDS


def template_dir() -> Path:
    """The installed templates (snncc._templates), or the repo's templates/ in a checkout."""
    try:
        path = Path(str(resources.files("snncc._templates")))
        if (path / "common").is_dir():
            return path
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "templates"


@functools.cache
def reserved_names() -> frozenset[str]:
    """Identifiers a user symbol must not take in C: keywords, math functions, and every name
    the templates use (read from the template files, so a new template local is covered)."""
    names = set(RESERVED_WORDS) | {"psi"}  # psi: the surrogate's local in generated code
    for path in template_dir().rglob("*.j2"):
        # Jinja tags become a placeholder that glues to neighbours ({{ s }}v -> Jv, not v)
        code = re.sub(r"//[^\n]*|\{#.*?#\}", " ", path.read_text(), flags=re.S)
        code = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "J", code, flags=re.S)
        names |= set(re.findall(r"\b[A-Za-z_]\w*\b", code))
    names |= {f + "f" for f in ("exp", "log", "sqrt", "pow", "fabs", "fmax", "fmin", "tanh")}
    return frozenset(n for n in names if not n.startswith("_"))


def cname(name: str) -> str:
    """The C identifier of a model symbol: itself, or ``name_u`` where that would collide."""
    return f"{name}_u" if name in reserved_names() else name


#: Characters free text keeps in a comment: printable ASCII but the backslash, which would splice
#: the next line into the comment (and ``??/`` is one too where trigraphs are on).
_SAFE = re.compile(r"[^ -\[\]-~]")


def comment_text(text: object) -> str:
    """``text`` as it may stand inside a ``//`` comment: one line, nothing that ends it.

    Newlines, other control characters, backslashes and non-ASCII characters are written as
    ``<U+XXXX>``, and ``??`` (a trigraph's start) as ``?<U+003F>``; the rest stays as written.
    """
    out = _SAFE.sub(lambda m: f"<U+{ord(m.group()):04X}>", str(text))
    return out.replace("??", "?<U+003F>")


def comment(text: object) -> str:
    """A whole ``//`` comment line holding ``text`` (see :func:`comment_text`)."""
    return f"// {comment_text(text)}"
