"""Finding bad image files, and decoding good ones the same way everywhere.

``read_header`` runs while a data set is indexed: it reads only the header (fast), catches
empty files, non-images, unreadable paths (symlink loops, permissions), decompression bombs and
truncation where the header shows it, and marks plain upright 8-bit JPEG/PNG files that
TensorFlow may decode natively with the same result. ``decode_image`` (Pillow) decodes every
other file and catches what a header cannot show (a truncated JPEG) by raising
``BadImageError``, which the pipeline turns into a report instead of a crash.

Pillow converts EXIF orientation, palette, CMYK, 16-bit and alpha images consistently: grey
(``L``) for one channel, ``RGB`` for three, ``RGBA`` for four; a GIF gives its first frame.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MODES = {1: "L", 3: "RGB", 4: "RGBA"}


@dataclass(frozen=True)
class BadImage:
    path: str
    reason: str


class BadImageError(ValueError):
    """An image file that cannot be used; the message is the reason."""


# Files TF can decode natively exactly as Pillow would: (format, mode) -> kind code. The
# pipeline decodes these with tf.io (fast, no GIL) and everything else with Pillow.
NATIVE_KINDS = {
    ("JPEG", "L"): 1,
    ("JPEG", "RGB"): 2,
    ("PNG", "L"): 3,
    ("PNG", "RGB"): 4,
    ("PNG", "RGBA"): 5,
}
_KIND_CHANNELS = {1: (1, 3), 2: (3,), 3: (1, 3), 4: (3,), 5: (4,)}
_TRAILERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}


def native_channels(kind: int) -> tuple[int, ...]:
    """Channel counts for which a file of this kind may take the native decoder."""
    return _KIND_CHANNELS.get(int(kind), ())


def read_header(path: str, max_pixels: int) -> tuple[str | None, int]:
    """(problem, native kind) from the file's header; kind 0 means "decode with Pillow".

    A JPEG or PNG is native only if it is upright (no EXIF rotation), 8-bit L/RGB/RGBA, and
    ends with its format's end marker; a file without the marker may be truncated, and goes
    to Pillow, which reports it if it is.
    """
    try:
        size = os.stat(path).st_size  # follows links: a loop raises ELOOP here
    except OSError as e:
        return f"unreadable: {e.strerror or e}", 0
    if size == 0:
        return "empty file (0 bytes)", 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                fmt, mode = img.format, img.mode
                upright = img.getexif().get(0x0112, 1) == 1
    except Image.DecompressionBombError as e:
        return f"too many pixels (decompression bomb): {e}", 0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return f"not a readable image ({type(e).__name__}: {str(e)[:80]})", 0
    if width * height > max_pixels:
        return (
            f"too many pixels: {width}×{height} = {width * height:,} > limit {max_pixels:,} "
            "(possible decompression bomb)"
        ), 0
    if width == 0 or height == 0:
        return f"empty {fmt} image ({width}×{height})", 0
    kind = NATIVE_KINDS.get((fmt, mode), 0) if upright else 0
    if kind:
        trailer = _TRAILERS[fmt]
        with open(path, "rb") as f:
            f.seek(max(0, size - len(trailer)))
            if f.read() != trailer:
                kind = 0
    return None, kind


def check_image(path: str, max_pixels: int) -> str | None:
    """The reason ``path`` cannot be used, from its header; ``None`` if it looks fine."""
    return read_header(path, max_pixels)[0]


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any Pillow image to ``channels`` channels (1, 3 or 4) consistently."""
    if channels not in MODES:
        raise ValueError(f"channels must be 1, 3 or 4; got {channels}")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: scale to 8 bits
        array = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") else max(float(array.max()), 1.0)
        img = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA") and channels != 4:
        # Composite on black rather than dropping alpha, so transparent pixels are defined.
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    return img.convert(MODES[channels])


RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


def decode_image(
    data_or_path: bytes | str,
    channels: int,
    max_pixels: int,
    shorter_side: int | None = None,
    interpolation: str = "bilinear",
) -> np.ndarray:
    """Decode to an (H, W, channels) uint8 array: EXIF orientation applied, first frame only.

    ``shorter_side``: also resize (antialiased) so that the shorter side has this length;
    JPEGs much larger than that are decoded at reduced scale (Pillow's ``draft``), which is
    where most of a large photo's decoding time goes.
    """
    import io

    source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                if img.size[0] * img.size[1] > max_pixels:
                    raise BadImageError(f"too many pixels: {img.size[0]}×{img.size[1]}")
                img.seek(0)
                if shorter_side and img.format == "JPEG":
                    w, h = img.size
                    scale = shorter_side / min(w, h)
                    img.draft(img.mode, (max(1, int(w * scale)), max(1, int(h * scale))))
                img = to_mode(ImageOps.exif_transpose(img), channels)
                if shorter_side and min(img.size) != shorter_side:
                    w, h = img.size
                    scale = shorter_side / min(w, h)
                    size = (
                        max(shorter_side, round(w * scale)),
                        max(shorter_side, round(h * scale)),
                    )
                    img = img.resize(size, RESAMPLE[interpolation])
                return np.asarray(img, dtype=np.uint8).reshape(img.size[1], img.size[0], channels)
    except BadImageError:
        raise
    except Exception as e:  # Pillow raises many types for damaged files; all mean "bad file"
        # Pillow names an in-memory file by its repr ("<_io.BytesIO object at 0x...>"),
        # which means nothing to the sender of an upload.
        reason = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "the data", str(e))
        raise BadImageError(f"cannot decode ({type(e).__name__}: {reason[:80]})") from e


def full_check(path: str, max_pixels: int, data: bytes | None = None) -> str | None:
    """The header check, then a full decode (of ``data`` if given, the file's bytes)."""
    problem = check_image(path, max_pixels)
    if problem:
        return problem
    try:
        decode_image(path if data is None else data, 3, max_pixels)
    except BadImageError as e:
        return str(e)
    return None


def scan_images(paths: list[str], max_pixels: int, workers: int = 4) -> list[BadImage]:
    """Fully decode every file (threads; Pillow releases the GIL) and report the bad ones.

    Indexing only reads headers; this finds what a header cannot show, such as truncation.
    Used by ``on_bad_image="error"`` (stop before training) and ``data inspect``.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        problems = list(pool.map(lambda p: full_check(p, max_pixels), paths))
    return [BadImage(p, r) for p, r in zip(paths, problems, strict=True) if r]


BAD_IMAGE_POLICIES = ("skip", "error")


def apply_bad_image_policy(
    bad: list[BadImage], policy: str, *, report: str | os.PathLike | None = None
) -> str:
    """Act on the bad files found before training; return a one-line summary.

    ``skip`` (default): training goes on without them; the list goes to ``report`` (a
    ``bad_images.csv``) when given. ``error``: raise, listing every bad file, so that nothing
    starts on a data set the user wants clean.
    """
    import csv

    if policy not in BAD_IMAGE_POLICIES:
        raise ValueError(f"--on-bad-image must be skip or error; got {policy!r}")
    if bad and policy == "error":
        listing = "\n".join(f"  {b.path}: {b.reason}" for b in bad)
        raise ValueError(f"{len(bad)} bad image file(s) (--on-bad-image error):\n{listing}")
    if report is not None:
        with open(report, "w", newline="", encoding="utf8", errors="surrogateescape") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "reason"])
            writer.writerows([b.path, b.reason] for b in bad)
    if not bad:
        return "bad images: none"
    where = f"; listed in {report}" if report is not None else ""
    return f"bad images: {len(bad)} skipped{where}"


def sample_sizes(paths: list[str], count: int = 64) -> tuple[list[tuple[int, int]], bool]:
    """(width, height) of up to ``count`` images spread over ``paths`` (headers only), and
    whether all of them are grey: what a task decides its input size and channels from."""
    spread = np.linspace(0, len(paths) - 1, min(count, len(paths))).astype(int)
    sizes, grey = [], True
    for i in spread:
        with Image.open(paths[i]) as im:
            sizes.append(im.size)
            grey &= im.mode in ("L", "I;16", "I", "1")
    return sizes, grey
