"""Data: sources (folders, manifests, standard sets, arrays), bad-file checks, tf.data pipeline."""

from resnetkit.data.checks import BadImage, check_image, decode_image, scan_images
from resnetkit.data.sources import (
    MAX_PIXELS,
    DataSource,
    ImageSet,
    from_arrays,
    from_folder,
    from_manifest,
    load_class_map,
    save_class_map,
)
from resnetkit.data.standard import STANDARD, load_standard


def load_data(
    spec: str, *, val_fraction: float = 0.1, seed: int = 0, max_pixels: int = MAX_PIXELS
) -> DataSource:
    """A data set by name (``fashion-mnist``, ``mnist``, ``cifar10``, ``cifar100``,
    ``digits``), image folder, or CSV manifest (``*.csv``)."""
    from pathlib import Path

    split = {"val_fraction": val_fraction, "seed": seed}
    if spec in STANDARD:
        return load_standard(spec, **split)
    path = Path(spec)
    if path.suffix.lower() == ".csv" and path.is_file():
        return from_manifest(path, max_pixels=max_pixels, **split)
    if path.is_dir():
        return from_folder(path, max_pixels=max_pixels, **split)
    from resnetkit.names import unknown_name_error

    if not path.exists() and "/" not in spec:
        raise unknown_name_error("data set", spec, STANDARD)
    raise FileNotFoundError(
        f"data not found: {spec} (a folder, a .csv manifest or a data set name)"
    )


__all__ = [
    "STANDARD",
    "BadImage",
    "DataSource",
    "ImageSet",
    "check_image",
    "decode_image",
    "from_arrays",
    "from_folder",
    "from_manifest",
    "load_class_map",
    "load_data",
    "load_standard",
    "save_class_map",
    "scan_images",
]
