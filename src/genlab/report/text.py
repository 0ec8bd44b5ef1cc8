"""Run-supplied text made short or safe for display: names shortened for tables and legends
(the full name goes into a tooltip) and strings made literal for Plotly."""

from __future__ import annotations

import html
import re

#: A comma that starts the next ``key=value`` of a run name (values may hold commas).
_NEXT_OVERRIDE = re.compile(r",(?=[+~]?[\w.@/-]+=)")


def plotly_text(text: str) -> str:
    """``text`` for a Plotly string shown as is: ``<``, ``>``, ``&`` as entities (Plotly renders
    some HTML tags) and ``$`` as ``&#36;`` (``$...$`` would be typeset as LaTeX)."""
    return html.escape(str(text), quote=False).replace("$", "&#36;")


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis in the middle."""
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def compact_name(name: str, limit: int) -> str:
    """A run name within ``limit`` characters: when too long, each override's dotted key is
    cut to its last two parts (``model.optimizer_g.lr=0.1`` -> ``optimizer_g.lr=0.1``), then
    the middle is left out."""
    if len(name) <= limit:
        return name
    prefix, sep, rest = name.rpartition(": ")
    parts = []
    for part in _NEXT_OVERRIDE.split(rest):
        key, eq, value = part.partition("=")
        parts.append(".".join(key.split(".")[-2:]) + eq + value if eq else part)
    return shorten(prefix + sep + ",".join(parts), limit)
