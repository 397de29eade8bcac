"""Standard data sets: Fashion-MNIST, MNIST, CIFAR-10/100 and scikit-learn's digits.

Fashion-MNIST and MNIST (idx files) are looked for, in order, in an explicit folder,
``$RESNETKIT_DATA/<name>``, the cache (``$RESNETKIT_CACHE/data/<name>``), Debian's packages
(``/usr/share/datasets/<name>``, package ``dataset-fashion-mnist``), and otherwise downloaded
from the official URLs into the cache. A file is accepted if its *decompressed* content has
the SHA-256 below (so Debian's recompressed copies verify too); downloads are also checked
against the publishers' MD5 of the ``.gz`` file.

CIFAR archives are Python pickles; they are read with an unpickler that accepts nothing but
lists, dicts, bytes and NumPy arrays, after the archive's MD5 has matched.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

from resnetkit.cache import cache_dir
from resnetkit.data.sources import DataSource, from_arrays
from resnetkit.download import ChecksumMismatch, DownloadUnavailable, FileRef, fetch_file, verify

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

IDX_SETS = {
    "fashion-mnist": {
        "urls": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        # MD5 of the published .gz files (Zalando's README).
        "gz_md5": (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
        # SHA-256 of the decompressed idx files, measured on Debian's dataset-fashion-mnist
        # 0.0~git20200523 (whose .gz files are recompressed, so their MD5s differ).
        "raw_sha256": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
        "classes": [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],
    },
    "mnist": {
        "urls": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "gz_md5": (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
        "raw_sha256": None,  # no local copy here to measure; the .gz MD5 guards downloads
        "classes": [str(d) for d in range(10)],
    },
}

CIFAR = {
    "cifar10": FileRef(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "md5",
    ),
    "cifar100": FileRef(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "md5",
    ),
}

STANDARD = (*IDX_SETS, *CIFAR, "digits")


def read_idx(data: bytes) -> np.ndarray:
    """Parse an idx file (the MNIST format): big-endian header, then uint8 data."""
    if len(data) < 8 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise ValueError("not an unsigned-byte idx file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    array = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"idx file holds {array.size} values, header says {shape}")
    return array.reshape(shape)


def _candidates(name: str, folder: str | Path | None) -> list[Path]:
    places = [Path(folder)] if folder else []
    if os.environ.get("RESNETKIT_DATA"):
        places.append(Path(os.environ["RESNETKIT_DATA"]) / name)
    places += [cache_dir("data", name), Path("/usr/share/datasets") / name]
    return places


def _read_member(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def find_idx_files(name: str, folder: str | Path | None = None) -> list[bytes]:
    """The four decompressed idx files of ``name``, verified, from the first place that has them."""
    spec = IDX_SETS[name]
    tried = []
    for place in _candidates(name, folder):
        files = [
            next((p for p in (place / f"{f}.gz", place / f) if p.is_file()), None)
            for f in IDX_FILES
        ]
        if not all(files):
            tried.append(str(place))
            continue
        raw = [_read_member(p) for p in files]
        if spec["raw_sha256"]:
            for p, data, want in zip(files, raw, spec["raw_sha256"], strict=True):
                got = hashlib.sha256(data).hexdigest()
                if got != want:
                    raise ChecksumMismatch(f"{p}: decompressed SHA-256 {got}, expected {want}")
        return raw
    raw = []
    for f, md5 in zip(IDX_FILES, spec["gz_md5"], strict=True):
        ref = FileRef(f"{spec['urls']}{f}.gz", md5, "md5")
        try:
            path = fetch_file(ref, target_dir=cache_dir("data", name))
        except DownloadUnavailable as e:
            raise FileNotFoundError(
                f"{name} not found in {', '.join(tried)} and the download failed:\n{e}\n"
                f"(on Debian/Ubuntu: apt-get install dataset-fashion-mnist)"
            ) from e
        raw.append(_read_member(path))
    return raw


def load_idx(name: str, folder: str | Path | None = None, **split_options) -> DataSource:
    x_train, y_train, x_test, y_test = (read_idx(d) for d in find_idx_files(name, folder))
    return from_arrays(
        name, IDX_SETS[name]["classes"], (x_train, y_train), (x_test, y_test), **split_options
    )


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles only the plain containers and NumPy arrays that CIFAR archives contain."""

    ALLOWED: frozenset[tuple[str, str]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} from a data file")


def _unpickle(data: bytes) -> dict:
    return _ArrayOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()


def load_cifar(name: str, archive: str | Path | None = None, **split_options) -> DataSource:
    """CIFAR-10/100 from the official python archive (a path, the cache, or a download)."""
    ref = CIFAR[name]
    if archive is None:
        path = fetch_file(ref, target_dir=cache_dir("data", name))
    else:
        path = Path(archive)
        verify(path, ref)
    train_names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"]
    if name == "cifar100":
        train_names = ["train"]
    label_key = b"labels" if name == "cifar10" else b"fine_labels"
    batches = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            if member.isfile() and base in (*train_names, "test", "batches.meta", "meta"):
                batches[base] = _unpickle(tar.extractfile(member).read())
    meta = batches["batches.meta" if name == "cifar10" else "meta"]
    names_key = b"label_names" if name == "cifar10" else b"fine_label_names"
    classes = [n.decode() for n in meta[names_key]]

    def images(keys):
        x = np.concatenate([np.asarray(batches[k][b"data"], np.uint8) for k in keys])
        y = np.concatenate([np.asarray(batches[k][label_key]) for k in keys])
        return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y

    return from_arrays(name, classes, images(train_names), images(["test"]), **split_options)


def load_digits(**split_options) -> DataSource:
    """scikit-learn's 1,797 real 8×8 digits, scaled from 0..16 to 0..255."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError as e:
        raise ImportError(
            "the digits data set ships with scikit-learn: pip install scikit-learn"
        ) from e
    digits = sk_digits()
    x = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    # A fixed 80/20 split (seed 0), stratified, serves as the test split.
    from resnetkit.data.sources import ImageSet, stratified_split

    everything = ImageSet(digits.target.astype(np.int32), arrays=x[..., None])
    train, test = stratified_split(everything, 0.2, seed=0)
    return from_arrays(
        "digits",
        [str(d) for d in range(10)],
        (train.arrays, train.labels),
        (test.arrays, test.labels),
        **split_options,
    )


def load_standard(name: str, path: str | Path | None = None, **split_options) -> DataSource:
    if name in IDX_SETS:
        return load_idx(name, path, **split_options)
    if name in CIFAR:
        return load_cifar(name, path, **split_options)
    if name == "digits":
        return load_digits(**split_options)
    from resnetkit.names import unknown_name_error

    raise unknown_name_error("data set", name, STANDARD)
