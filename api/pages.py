"""The Jinja2 environment of the pages in ``api/templates/``: autoescaped, catalogue words."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from api.catalogue import label, t


@cache
def environment() -> Environment:
    """Built on first use (nothing at import time); every ``{{ }}`` is HTML-escaped."""
    env = Environment(
        loader=PackageLoader("api", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(t=t, label=label)
    return env
