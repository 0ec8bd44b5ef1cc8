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
    """A run name within ``limit`` characters: when too long, each override's dotted key is cut
    to the shortest ending that no other key of the name shares (``model.optimizer_g.lr=0.1``
    -> ``lr=0.1``; a list index keeps its list: ``betas.0``), then the middle is left out."""
    if len(name) <= limit:
        return name
    prefix, sep, rest = name.rpartition(": ")
    parts = [part.partition("=") for part in _NEXT_OVERRIDE.split(rest)]
    keys = [key.split(".") for key, eq, _ in parts if eq]
    short = []
    for key, eq, value in parts:
        if not eq:
            short.append(key)
            continue
        words = key.split(".")
        take = 2 if words[-1].isdigit() else 1
        while take < len(words) and sum(k[-take:] == words[-take:] for k in keys) > 1:
            take += 1
        short.append(".".join(words[-take:]) + eq + value)
    return shorten(prefix + sep + ",".join(short), limit)
