"""Fetching the images and files that bots hand us by URL, before they are uploaded to LiveChat.

Every hop goes through `bridge.net.safe_request` (SSRF guard, pinned IP, timeouts). The body is
streamed and the download stops as soon as it passes MAX_MEDIA_BYTES (LiveChat's upload limit).
"""
from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import requests

from bridge.net import UnsafeURL, safe_request

MAX_MEDIA_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024
FETCH_TIMEOUT = (3.05, 20)


class MediaError(Exception):
    """The media could not be fetched. `transient` says whether trying again later may help."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class Media:
    filename: str
    content: bytes
    content_type: str


def fetch_media(*, url: str, max_bytes: int = MAX_MEDIA_BYTES) -> Media:
    """Downloads `url` (following up to 3 redirects, each checked) or raises MediaError."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = safe_request("GET", url, timeout=FETCH_TIMEOUT, stream=True)
        except UnsafeURL as exc:
            raise MediaError(f"media URL refused: {exc}") from None
        except requests.Timeout:
            raise MediaError("the media URL timed out", transient=True) from None
        except requests.RequestException as exc:
            raise MediaError(f"could not fetch the media URL ({type(exc).__name__})", transient=True) from None
        with response:
            if response.is_redirect:
                location = response.headers.get("Location")
                if not location:
                    raise MediaError(f"the media URL answered HTTP {response.status_code} without a Location")
                url = urljoin(url, location)
                continue
            if response.status_code != 200:
                transient = response.status_code >= 500 or response.status_code in (408, 429)
                raise MediaError(f"the media URL answered HTTP {response.status_code}", transient=transient)
            content = _read_capped(response, max_bytes)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            filename = _filename(response.headers.get("Content-Disposition", ""), url)
            if not content_type or content_type == "application/octet-stream":
                content_type = mimetypes.guess_type(filename)[0] or content_type or "application/octet-stream"
            return Media(filename=filename, content=content, content_type=content_type)
    raise MediaError(f"the media URL redirects more than {MAX_REDIRECTS} times")


def _read_capped(response: requests.Response, max_bytes: int) -> bytes:
    too_big = MediaError(f"the media is larger than {max_bytes // (1024 * 1024)} MB (LiveChat's limit)")
    try:
        declared = int(response.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > max_bytes:
        raise too_big
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise too_big
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise MediaError(f"the media download broke off ({type(exc).__name__})", transient=True) from None
    if not size:
        raise MediaError("the media URL answered an empty body")
    return b"".join(chunks)


_DISPOSITION_NAME = re.compile(r"""filename\*?=(?:UTF-8''|")?([^";]+)""", re.IGNORECASE)


def _filename(disposition: str, url: str) -> str:
    match = _DISPOSITION_NAME.search(disposition or "")
    name = unquote(match.group(1)) if match else unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[\x00-\x1f/\\]", "_", name).strip(" .")
    return name[:200] or "file"
