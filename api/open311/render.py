"""JSON and XML bodies as GeoReport v2 writes them, and its error format.

XML follows the spec's "Spark convention" mapping from JSON: a list becomes a wrapper
element holding one child per item (``services`` → ``service``, ``attributes`` →
``attribute``, ...), ``null`` an empty element, booleans ``true``/``false``. Errors are
``[{"code": 404, "description": "..."}]`` / ``<errors><error><code>…``, with the HTTP
status of the first error (404 unknown, 403 api_key, 400 anything else).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from xml.etree import ElementTree

from fastapi.responses import Response

Format = Literal["json", "xml"]

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"

# The wrapper → item names of the spec's documents.
ITEM_NAMES = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "service_requests": "request",
    "errors": "error",
}


class Open311Error(Exception):
    """An error answered in the spec's format; ``errors`` are (code, description) pairs."""

    def __init__(self, status: int, *errors: tuple[int, str]) -> None:
        super().__init__("; ".join(d for _, d in errors))
        self.status = status
        self.errors = list(errors)


def error(status: int, description: str) -> Open311Error:
    return Open311Error(status, (status, description))


#: What XML 1.0 cannot carry at all (not even as a character reference): the C0 controls
#: but tab, newline and carriage return, the surrogates, and U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    # Replaced, never emitted: one such character would make the whole document unparsable.
    return _NOT_XML.sub("\ufffd", str(value))


def _fill(parent: ElementTree.Element, name: str, value: Any) -> None:
    if isinstance(value, Mapping):
        node = ElementTree.SubElement(parent, name)
        for key, item in value.items():
            _fill(node, key, item)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        node = ElementTree.SubElement(parent, name)
        child = ITEM_NAMES.get(name, "item")
        for item in value:
            _fill(node, child, item)
    else:
        node = ElementTree.SubElement(parent, name)
        node.text = _text(value)


def to_xml(root: str, body: Any) -> bytes:
    """The document ``<root>…</root>``: a list gives one child per item, a mapping its fields."""
    holder = ElementTree.Element("holder")
    _fill(holder, root, body)
    element = holder[0]
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(
        element, encoding="unicode"
    ).encode("utf-8")


def render(body: Any, fmt: Format, root: str, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, body), status_code=status, media_type=XML_TYPE)
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(payload, status_code=status, media_type=JSON_TYPE)


def render_error(exc: Open311Error, fmt: Format) -> Response:
    body = [{"code": code, "description": description} for code, description in exc.errors]
    return render(body, fmt, "errors", status=exc.status)
