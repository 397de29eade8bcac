"""Downloads into the cache, verified by checksum and written atomically.

Used for pretrained weights and data sets alike:

- a download streams into a temporary file beside the target, is hashed on the way, and is
  renamed into place only when the checksum matches: the cache never holds a partial or
  unverified file;
- a file already there (downloaded before, or placed by hand) is verified before use, and
  removed if it does not match;
- without network, the error names the URL that failed and the exact path to put the file.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from resnetkit.cache import cache_dir
from resnetkit.files import atomic_path


@dataclass(frozen=True)
class FileRef:
    """One downloadable file and the checksum its publisher gives for it."""

    url: str
    checksum: str  # hex digest, or a prefix of one (torchvision/timm file names)
    algorithm: str = "sha256"  # or "md5"

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


CHUNK = 1 << 20


class DownloadUnavailable(RuntimeError):
    """A file could not be downloaded; the message says where to place it by hand."""


class ChecksumMismatch(ValueError):
    """A file's digest differs from the published one; the file was not kept."""


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, ref: FileRef) -> None:
    """Raise ``ChecksumMismatch`` unless ``path``'s digest starts with ``ref.checksum``."""
    actual = file_digest(path, ref.algorithm)
    if not actual.startswith(ref.checksum.lower()):
        raise ChecksumMismatch(
            f"{path.name}: {ref.algorithm} is {actual}, expected {ref.checksum} "
            f"(published for {ref.url}); the file was refused and removed"
        )


def fetch_file(ref: FileRef, *, target_dir: Path | None = None, timeout: float = 30.0) -> Path:
    """The verified local copy of ``ref`` in ``target_dir`` (default: the weights cache)."""
    target = Path(target_dir or cache_dir("weights")) / ref.filename
    if target.exists():
        try:
            verify(target, ref)
        except ChecksumMismatch:
            target.unlink()  # a damaged or wrong file must not stay in the cache
            raise
        return target
    try:
        with atomic_path(target) as tmp:
            digest = hashlib.new(ref.algorithm)
            with (
                urllib.request.urlopen(ref.url, timeout=timeout) as response,
                open(tmp, "wb") as out,
            ):
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            actual = digest.hexdigest()
            if not actual.startswith(ref.checksum.lower()):
                raise ChecksumMismatch(
                    f"download of {ref.url} has {ref.algorithm} {actual}, expected "
                    f"{ref.checksum}; nothing was kept"
                )
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadUnavailable(
            f"could not download {ref.url} ({reason}).\n"
            f"Download it elsewhere and place it at:\n  {target}\n"
            f"({ref.algorithm} must start with {ref.checksum}); resnetkit verifies it on first use."
        ) from e
    return target
