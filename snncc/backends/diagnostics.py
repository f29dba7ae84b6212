"""Map compiler errors in generated code back to the model line that produced it."""

from __future__ import annotations

import re

_LOCATION = re.compile(r"(?:^|[\s/])[\w.]+?[.:(](\d+)[:),]")


def explain(source: str, log: str, filename: str) -> str:
    """A readable report: the model/equation behind the first error and the source around it."""
    lines = source.splitlines()
    m = re.search(re.escape(filename) + r"[:(](\d+)", log)
    if not m:
        return f"compiler output:\n{log.strip()}"
    n = int(m.group(1))
    origin = equation = projection = None
    for k in range(min(n, len(lines)) - 1, -1, -1):
        text = lines[k].strip()
        if equation is None and text.startswith("// ") and ":" in text:
            equation = text[3:]
        if projection is None and "// projection '" in text:
            projection = text[text.index("//") + 3 :]
        if "// population '" in text or "// kernel" in text:
            origin = text[text.index("//") + 3 :]
            break
    if origin and projection and equation == projection:
        origin = f"{origin}, {projection}"
    context = "\n".join(
        f"{'>>' if i + 1 == n else '  '} {i + 1:5d} | {lines[i]}"
        for i in range(max(0, n - 4), min(len(lines), n + 3))
    )
    first_error = next((ln for ln in log.splitlines() if "error" in ln), log.strip()[:400])
    return (
        f"generated code failed to compile at {filename}:{n}\n"
        f"  from: {origin or 'unknown'}\n"
        f"  equation: {equation or 'unknown'}\n"
        f"  compiler: {first_error.strip()}\n{context}"
    )
