"""Data sources, bad files and the tf.data pipeline."""

import os

import numpy as np
import pytest
from helpers import LIMIT, save
from PIL import Image

from resnetkit.data import (
    check_image,
    decode_image,
    from_arrays,
    from_folder,
    from_manifest,
    load_class_map,
    load_data,
    save_class_map,
    scan_images,
)
from resnetkit.data.augment import Augment
from resnetkit.data.pipeline import BadImageLog, build_dataset
from resnetkit.data.sources import stratified_split
from resnetkit.preprocessing import Preprocessing


def test_index_reports_header_problems_and_keeps_good_files(broken):
    root, good = broken
    source = from_folder(root, val_fraction=0, max_pixels=LIMIT)
    reasons = {os.path.basename(b.path): b.reason for b in source.bad}
    assert reasons["zero.jpg"].startswith("empty file")
    assert reasons["notes.jpg"].startswith("not a readable image")
    assert "too many pixels" in reasons["bomb.png"]
    assert "unreadable" in reasons["loop.jpg"]
    indexed = sorted(source.splits["train"].paths)
    # The truncated PNG fails already at the header (reading its EXIF runs off the end); the
    # truncated JPEG passes the header check, and the pipeline finds it at decode.
    assert "truncated" in reasons["truncated.png"]
    assert indexed == sorted([*good, str(root / "cat" / "truncated.jpg")])
    assert source.class_names == ["cat", "dog", "empty_class", "owl"]
    with pytest.raises(ValueError, match=r"no usable training image in class.*empty_class"):
        source.validate()


def test_pipeline_survives_bad_files_and_uses_every_good_one(broken):
    root, good = broken
    (root / "empty_class").rmdir()
    source = from_folder(root, val_fraction=0, max_pixels=LIMIT)
    source.validate()
    log = BadImageLog()
    prep = Preprocessing(crop_size=32, resize_size=32)
    for training in (False, True):
        ds = build_dataset(
            source.splits["train"], prep, channels=3, batch_size=4, training=training, bad_log=log
        )
        seen = sum(int(x.shape[0]) for x, _ in ds)
        assert seen == len(good)
    assert [os.path.basename(b.path) for b in log.items] == ["truncated.jpg"]
    assert all(b.reason.startswith("cannot decode") for b in log.items)


def test_full_scan_finds_decode_time_problems_before_training(broken):
    root, _ = broken
    source = from_folder(root, val_fraction=0, max_pixels=LIMIT)
    bad = scan_images(source.splits["train"].paths, LIMIT)
    assert [os.path.basename(b.path) for b in bad] == ["truncated.jpg"]


def test_fewer_than_two_classes_is_an_error(tmp_path):
    save(tmp_path / "only" / "a.png")
    with pytest.raises(ValueError, match="at least two classes"):
        from_folder(tmp_path).validate()


@pytest.mark.parametrize(
    ("mode", "channels", "expected"),
    [
        ("L", 3, (100, 100, 100)),
        ("RGB", 1, (round(0.299 * 200 + 0.587 * 10 + 0.114 * 10),)),
        ("CMYK", 3, None),
        ("P", 3, None),
        ("RGBA", 3, (200, 10, 10)),
        ("I;16", 1, (round(30000 / 65535 * 255),)),
    ],
)
def test_modes_convert_consistently(tmp_path, mode, channels, expected):
    color = {
        "L": 100,
        "RGB": (200, 10, 10),
        "CMYK": (0, 0, 0, 0),
        "P": 3,
        "RGBA": (200, 10, 10, 255),
        "I;16": 30000,
    }
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    Image.new(mode, (6, 4), color[mode]).save(path)
    array = decode_image(str(path), channels, LIMIT)
    assert array.shape == (4, 6, channels) and array.dtype == np.uint8
    if expected is not None:
        assert tuple(array[0, 0]) == expected


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (30, 10), (0, 0, 255))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert decode_image(str(tmp_path / "r.jpg"), 3, LIMIT).shape == (30, 10, 3)


def test_gif_first_frame_and_webp(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert decode_image(str(tmp_path / "a.gif"), 3, LIMIT)[0, 0, 0] > 200
    save(tmp_path / "w.webp", lossless=True)
    assert tuple(decode_image(str(tmp_path / "w.webp"), 3, LIMIT)[0, 0]) == (200, 10, 10)
    assert check_image(str(tmp_path / "w.webp"), LIMIT) is None


def test_predefined_splits_and_manifest(tmp_path):
    for split in ("train", "val", "test"):
        for cls in ("a", "b"):
            for i in range(3):
                save(tmp_path / "d" / split / cls / f"{i}.png")
    source = from_folder(tmp_path / "d")
    assert {k: len(v) for k, v in source.splits.items()} == {"train": 6, "val": 6, "test": 6}
    save(tmp_path / "d" / "test" / "c" / "0.png")
    with pytest.raises(ValueError, match=r"c do not exist"):
        from_folder(tmp_path / "d")

    rows = ["path,label,split"] + [f"d/train/{c}/{i}.png,{c},train" for c in "ab" for i in range(3)]
    rows.append("d/test/a/0.png,a,test")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    source = load_data(str(tmp_path / "m.csv"), val_fraction=0.34)
    assert source.class_names == ["a", "b"]
    assert (len(source.splits["train"]), len(source.splits["val"]), len(source.splits["test"])) == (
        4,
        2,
        1,
    )
    (tmp_path / "bad.csv").write_text("file,class\nx.png,a\n")
    with pytest.raises(ValueError, match="missing label, path"):
        from_manifest(tmp_path / "bad.csv")


def test_stratified_split_is_seeded_and_keeps_every_class():
    labels = np.repeat(np.arange(3), [10, 5, 2]).astype(np.int32)
    images = from_arrays(
        "x", ["a", "b", "c"], (np.zeros((17, 8, 8), np.uint8), labels), val_fraction=0
    )
    train, val = stratified_split(images.splits["train"], 0.2, seed=3)
    again, _ = stratified_split(images.splits["train"], 0.2, seed=3)
    assert val.counts(3) == [2, 1, 1] and train.counts(3) == [8, 4, 1]
    np.testing.assert_array_equal(train.labels, again.labels)


def test_class_map_round_trip(tmp_path):
    save_class_map(tmp_path / "class_map.json", ["T-shirt/top", "Café"])
    assert load_class_map(tmp_path / "class_map.json") == ["T-shirt/top", "Café"]
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="class map"):
        load_class_map(tmp_path / "bad.json")


def test_fashion_mnist_from_debian_package():
    source = load_data("fashion-mnist", val_fraction=0)
    train, test = source.splits["train"], source.splits["test"]
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.arrays.shape[1:] == (28, 28, 1)
    assert source.class_names[0] == "T-shirt/top" and train.counts(10) == [6000] * 10
    assert train.labels[:5].tolist() == [9, 0, 0, 3, 0]


def test_normalization_follows_the_weights_preprocessing():
    x = np.full((2, 32, 32, 3), 255, np.uint8)
    x[..., 0] = 0
    images = from_arrays("x", ["a", "b"], (x, np.array([0, 1])), val_fraction=0).splits["train"]
    caffe = Preprocessing(
        mode="caffe", mean=(103.939, 116.779, 123.68), std=(1, 1, 1), crop_size=32, resize_size=32
    )
    batch, _ = next(iter(build_dataset(images, caffe, channels=3, batch_size=2)))
    np.testing.assert_allclose(
        batch[0, 0, 0], [255 - 103.939, 255 - 116.779, 0 - 123.68], rtol=1e-5
    )
    torch_style = Preprocessing(crop_size=32, resize_size=32)
    batch, _ = next(iter(build_dataset(images, torch_style, channels=3, batch_size=2)))
    np.testing.assert_allclose(
        batch[0, 0, 0], [(0 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225], rtol=1e-5
    )


def test_eval_geometry_resizes_the_shorter_side_then_center_crops():
    x = np.zeros((1, 40, 80, 1), np.uint8)
    x[:, :, 30:50] = 255  # a bright band in the horizontal center
    images = from_arrays("x", ["a", "b"], (x, np.array([0])), val_fraction=0).splits["train"]
    prep = Preprocessing(mode="tf", crop_size=16, resize_size=20)
    batch, _ = next(iter(build_dataset(images, prep, channels=1, batch_size=1)))
    assert batch.shape == (1, 16, 16, 1)
    assert float(batch[0, 8, 8, 0]) > 0.9 and float(batch[0, 8, 0, 0]) < -0.9


def random_images(n: int, channels: int = 3, size: int = 32):
    """A training split of ``n`` random uint8 images in two alternating classes."""
    x = np.random.default_rng(0).integers(0, 255, (n, size, size, channels), np.uint8)
    return from_arrays("x", ["a", "b"], (x, np.arange(n) % 2), val_fraction=0).splits["train"]


def test_training_stream_is_reproducible_with_a_seed():
    images = random_images(16, channels=3)
    prep = Preprocessing(crop_size=24, resize_size=32)

    def first(seed):
        ds = build_dataset(images, prep, channels=3, batch_size=8, training=True, seed=seed)
        return next(iter(ds))[0].numpy()

    np.testing.assert_array_equal(first(1), first(1))
    assert not np.array_equal(first(1), first(2))


def test_mixup_gives_soft_labels():
    images = random_images(8, channels=3)
    prep = Preprocessing(crop_size=32, resize_size=32)
    ds = build_dataset(
        images,
        prep,
        channels=3,
        batch_size=8,
        training=True,
        num_classes=2,
        augment=Augment(mixup=0.4),
    )
    _, y = next(iter(ds))
    y = y.numpy()
    assert y.shape == (8, 2)
    # Mixed: some label lies strictly between 0 and 1 (one-hot labels, MixUp doing nothing,
    # would fail here); still a distribution over the classes.
    assert np.any((y > 0) & (y < 1))
    assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_allclose(np.sum(y, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="not both"):
        Augment(mixup=0.2, cutmix=1.0)


def test_bad_image_policy(broken, tmp_path):
    from resnetkit.data.checks import apply_bad_image_policy

    root, _ = broken
    source = from_folder(root, val_fraction=0, max_pixels=LIMIT)
    bad = source.bad + scan_images(source.splits["train"].paths, LIMIT)
    with pytest.raises(ValueError) as err:
        apply_bad_image_policy(bad, "error")
    assert all(os.path.basename(b.path) in str(err.value) for b in bad) and len(bad) == 6
    summary = apply_bad_image_policy(bad, "skip", report=tmp_path / "bad_images.csv")
    assert summary.startswith("bad images: 6 skipped")
    rows = (tmp_path / "bad_images.csv").read_text(errors="surrogateescape").splitlines()
    assert rows[0] == "path,reason" and len(rows) == 7
    with pytest.raises(ValueError, match="skip or error"):
        apply_bad_image_policy(bad, "ignore")


@pytest.mark.parametrize("crop", ["none", "pad", "random_resized"])
def test_keras_augmentation_layers_run_on_every_crop_mode(crop):
    images = random_images(8, channels=1)
    prep = Preprocessing(mode="tf", crop_size=28, resize_size=32)
    augment = Augment(crop=crop, translate=0.1, erasing=0.5, randaugment=2, cutmix=1.0)
    ds = build_dataset(
        images, prep, channels=1, batch_size=8, training=True, num_classes=2, augment=augment
    )
    batch, y = next(iter(ds))
    assert batch.shape == (8, 28, 28, 1) and y.shape == (8, 2)
    assert float(np.min(batch)) >= -1.0 - 1e-5 and float(np.max(batch)) <= 1.0 + 1e-5


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_random_erasing_erases_each_image_with_probability_p(p):
    """augment.erasing is the probability itself (Keras' single-number factor would draw each
    image's probability from [0, p]). Images of constant grey 128: erased ones change."""
    n = 400
    x = np.full((n, 28, 28, 1), 128, np.uint8)
    images = from_arrays("x", ["a", "b"], (x, np.arange(n) % 2), val_fraction=0).splits["train"]
    prep = Preprocessing(mode="tf", crop_size=28, resize_size=28)
    augment = Augment(crop="none", flip=False, erasing=p)
    ds = build_dataset(images, prep, channels=1, batch_size=n, training=True, augment=augment)
    batch = next(iter(ds))[0].numpy()
    grey = 128 / 127.5 - 1.0  # preprocessing mode "tf": [-1, 1]
    erased = np.mean(np.any(np.abs(batch - grey) > 1e-3, axis=(1, 2, 3)))
    assert abs(erased - p) < 0.08, erased


@pytest.mark.parametrize("augment", [Augment(), Augment(crop="pad", erasing=0.5, cutmix=1.0)])
def test_each_epoch_is_a_function_of_seed_and_epoch(augment):
    """Epochs differ; a stream started at epoch 1 (a resumed run) repeats epoch 1 exactly."""
    images = random_images(8, channels=3)
    prep = Preprocessing(crop_size=24, resize_size=32)

    def batches(seed, **stream):
        ds = build_dataset(
            images,
            prep,
            channels=3,
            batch_size=4,
            training=True,
            seed=seed,
            augment=augment,
            num_classes=2,
            **stream,
        )
        return [(x.numpy(), y.numpy()) for x, y in ds]

    full = batches(5, epochs=3)
    assert len(full) == 6
    assert not np.array_equal(np.sort(full[0][0], axis=0), np.sort(full[2][0], axis=0))
    resumed = batches(5, epochs=2, first_epoch=1, skip_batches=1)
    assert len(resumed) == 3
    for (x, y), (x2, y2) in zip(full[3:], resumed, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(batches(6, epochs=1)[0][0], full[0][0])


def _resident_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


def test_a_long_training_stream_holds_its_images_once():
    """40 epochs of 24 MiB of in-memory images must not hold 40 copies of them (tf.data's
    default rewrites did: one copy per concatenated epoch when the iterator was made)."""
    images = random_images(24_576, channels=1)
    prep = Preprocessing(mode="tf", crop_size=32, resize_size=32)
    ds = build_dataset(
        images,
        prep,
        channels=1,
        batch_size=256,
        training=True,
        augment=Augment(crop="pad"),
        epochs=40,
    )
    before = _resident_mib()
    next(iter(ds))
    assert _resident_mib() - before < 300  # 40 copies would be 960 MiB


def _cifar_archive(path, batches: dict) -> str:
    """A tar.gz laid out like cifar-10-python.tar.gz; returns its MD5."""
    import hashlib
    import io
    import pickle
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, content in batches.items():
            data = pickle.dumps(content)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar_archive_is_read_without_trusting_its_pickles(tmp_path, monkeypatch):
    from resnetkit.data import standard
    from resnetkit.download import FileRef

    rng = np.random.default_rng(0)

    def batch(n):
        return {
            b"data": rng.integers(0, 255, (n, 3072), np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }

    names = [f"class{i}".encode() for i in range(10)]
    batches = {f"data_batch_{i}": batch(4) for i in range(1, 6)}
    batches |= {"test_batch": batch(3), "batches.meta": {b"label_names": names}}
    batches["test"] = batches.pop("test_batch")
    md5 = _cifar_archive(tmp_path / "c10.tar.gz", batches)
    monkeypatch.setitem(
        standard.CIFAR, "cifar10", FileRef("https://example.invalid/c10.tar.gz", md5, "md5")
    )
    source = standard.load_cifar("cifar10", tmp_path / "c10.tar.gz", val_fraction=0)
    assert source.class_names == [f"class{i}" for i in range(10)]
    train = source.splits["train"]
    assert train.arrays.shape == (20, 32, 32, 3) and len(source.splits["test"]) == 3
    first = batches["data_batch_1"][b"data"][0]
    np.testing.assert_array_equal(train.arrays[0, :, :, 0].reshape(-1), first[:1024])  # red plane

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch PWNED",))

    batches["batches.meta"] = {b"label_names": names, b"evil": Payload()}
    md5 = _cifar_archive(tmp_path / "evil.tar.gz", batches)
    monkeypatch.setitem(
        standard.CIFAR, "cifar10", FileRef("https://example.invalid/e.tar.gz", md5, "md5")
    )
    monkeypatch.chdir(tmp_path)
    import pickle

    with pytest.raises(pickle.UnpicklingError, match=r"refused to load posix\.system"):
        standard.load_cifar("cifar10", tmp_path / "evil.tar.gz")
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(ValueError, match="md5"):
        standard.load_cifar("cifar10", tmp_path / "c10.tar.gz")  # checksum of another file


def test_whole_batch_pad_crop_and_flip_are_real_crops_and_flips():
    """In-memory images take the vectorized path: every output is a pad-crop (+flip) of one
    input image, and the crops vary."""
    x = np.random.default_rng(3).integers(1, 255, (16, 6, 6, 1), np.uint8)
    images = from_arrays("x", ["a", "b"], (x, np.arange(16) % 2), val_fraction=0).splits["train"]
    identity = Preprocessing(mean=(0.0,), std=(1 / 255,), crop_size=6, resize_size=6)
    augment = Augment(crop="pad", pad=1, flip=True)
    ds = build_dataset(
        images, identity, channels=1, batch_size=8, training=True, augment=augment, seed=4
    )
    candidates = []
    for image in x.astype(np.float32):
        padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))
        for dy in range(3):
            for dx in range(3):
                crop = padded[dy : dy + 6, dx : dx + 6]
                candidates += [crop, crop[:, ::-1]]
    candidates = np.stack(candidates)
    seen = set()
    for batch, _ in ds:
        for out in batch.numpy():
            matches = np.flatnonzero(np.all(np.abs(candidates - out) < 1e-3, axis=(1, 2, 3)))
            assert len(matches) >= 1
            seen.add(int(matches[0]) % 18)
    assert len(seen) > 4  # several different offsets/flips were drawn
