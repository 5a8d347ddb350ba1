"""Files to attach: a JPEG with EXIF (GPS included unless told), a PDF, and an upload over
the API harness, for the attachment tests and the browser tests."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.support.api import ApiHarness

GPS_IFD = 0x8825
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def jpeg(size: tuple[int, int] = (640, 480), *, gps: bool = True, color: str = "red") -> bytes:
    """A JPEG photo with a capture time and (by default) GPS coordinates in its EXIF."""
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    exif[0x0132] = "2026:12:01 09:30:00"  # DateTime
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (39.0, 59.0, 0.0), 3: "E", 4: (116.0, 18.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


async def upload(
    api: ApiHarness,
    path: str,
    role: str,
    data: bytes,
    name: str = "photo.jpg",
    department: str | None = None,
    **headers: str,
) -> Any:
    return await api.client.post(
        path,
        files={"file": (name, data, "application/octet-stream")},
        data={"note": "现场照片"},
        headers=api.auth(role, department, **headers),
    )
