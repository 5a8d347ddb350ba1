// An attachment's thumbnail, for the workbench and the dashboard alike. Files are read with
// the bearer token, so the image comes from ``blobUrlOf`` (a blob URL), never a plain link.
"use strict";

export function thumbnail(file, blobUrlOf) {
  const img = document.createElement("img");
  img.className = "thumb";
  img.alt = file.filename;
  blobUrlOf(file.thumbnail_url).then((src) => { img.src = src; }).catch(() => { img.alt = "—"; });
  return img;
}
