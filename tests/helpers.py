"""Shared test helpers."""

from __future__ import annotations

import io
import uuid
import zlib

import h5py
import numpy as np
from PIL import Image


def fill_weights(model, seed: int = 0) -> None:
    """Give every weight deterministic values that depend on its path, not on layer order.

    Kernels get He-scaled normals, BN statistics plausible positive values, so that deep
    networks in inference mode keep finite, non-trivial outputs.
    """
    for w in model.weights:
        rng = np.random.default_rng(zlib.crc32(f"{seed}/{w.path}".encode()))
        shape = tuple(w.shape)
        leaf = w.path.rsplit("/", 1)[-1]
        if leaf in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif leaf == "gamma":
            value = rng.uniform(0.2, 0.6, shape)
        elif leaf == "moving_variance":
            value = rng.uniform(0.5, 1.5, shape)
        else:  # beta, moving_mean, bias
            value = rng.normal(0.0, 0.1, shape)
        w.assign(value.astype(w.dtype))


def images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype("float32")


def write_keras_h5(model, path) -> None:
    """Write ``model``'s weights in the legacy HDF5 layout that keras.applications publishes."""
    with h5py.File(path, "w") as f:
        layers = [layer for layer in model.layers if layer.weights]
        f.attrs["layer_names"] = [layer.name.encode("utf8") for layer in layers]
        for layer in layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.path.split('/')[-1]}:0" for w in layer.weights]
            group.attrs["weight_names"] = [n.encode("utf8") for n in names]
            for name, w in zip(names, layer.weights, strict=True):
                group.create_dataset(name, data=np.asarray(w.numpy()))


LIMIT = 1_000_000  # a low pixel limit makes a small "decompression bomb"


def save(path, size=(40, 30), mode="RGB", color=(200, 10, 10), **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, **kw)
    return path


def png(array: np.ndarray) -> bytes:
    """A uint8 (H, W, 1|3) array as PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(buffer, "PNG")
    return buffer.getvalue()


def multipart(files: dict[str, bytes]) -> tuple[str, bytes]:
    """(content type, body) of a multipart/form-data request with one part per file."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, data in files.items():
        disposition = f'form-data; name="image"; filename="{name}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        head += "Content-Type: application/octet-stream\r\n\r\n"
        body += head.encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def write_voc(root, count: int = 24, size: int = 32, seed: int = 0):
    """A Pascal VOC-layout folder of ``count`` scenes: red (class 1) and blue (class 2)
    squares on dark noise, palette masks, 80% train / 20% val lists and a classes.txt."""
    from pathlib import Path

    root = Path(root)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    stems = [f"{i:03d}" for i in range(count)]
    for stem in stems:
        image = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        for _ in range(2):
            label, side = int(rng.integers(1, 3)), int(rng.integers(size // 5, size // 2))
            y, x = rng.integers(0, size - side, 2)
            mask[y : y + side, x : x + side] = label
            image[y : y + side, x : x + side] = (200, 40, 40) if label == 1 else (40, 40, 200)
        Image.fromarray(image).save(root / "JPEGImages" / f"{stem}.jpg", quality=95)
        png = Image.fromarray(mask, mode="P")
        png.putpalette([0, 0, 0, 128, 0, 0, 0, 0, 128] + [0] * 759)
        png.save(root / "SegmentationClass" / f"{stem}.png")
    cut = int(count * 0.8)
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(stems[:cut]) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(stems[cut:]) + "\n")
    (root / "classes.txt").write_text("background\nred\nblue\n")
    return root


def write_coco_boxes(root, count: int = 24, size: int = 64, seed: int = 0):
    """A COCO-layout detection folder: ``count`` scenes of red (category 5) and blue
    (category 9) squares on dark noise, 80% in train2017 / 20% in val2017, one or two
    boxes each; images of varied sizes (``size`` and three quarters of it)."""
    import json
    from pathlib import Path

    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cut = int(count * 0.8)
    for split, index in (("train", range(cut)), ("val", range(cut, count))):
        (root / f"{split}2017").mkdir(exist_ok=True)
        images, annotations = [], []
        for i in index:
            h, w = (size, size) if i % 2 else (size * 3 // 4, size)
            image = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
            for _ in range(int(rng.integers(1, 3))):
                red, side = bool(rng.integers(0, 2)), int(rng.integers(size // 6, size // 2))
                y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
                image[y : y + side, x : x + side] = (200, 40, 40) if red else (40, 40, 200)
                annotations.append({"id": len(annotations) + 1, "image_id": i,
                                    "category_id": 5 if red else 9, "iscrowd": 0,
                                    "bbox": [x, y, side, side], "area": side * side})  # fmt: skip
            Image.fromarray(image).save(root / f"{split}2017" / f"{i:03d}.png")
            images.append({"id": i, "file_name": f"{i:03d}.png", "width": w, "height": h})
        cats = [{"id": 5, "name": "red"}, {"id": 9, "name": "blue"}]
        data = {"images": images, "annotations": annotations, "categories": cats}
        (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(data))
    return root


def served_predictions(source, files: dict[str, bytes]) -> list[dict]:
    """``resnetkit serve`` of ``source`` on a free port, one multipart POST /predict of
    ``files``, the server shut down: the rows it answered."""
    import http.client
    import json
    import threading

    from resnetkit.serve import ServeConfig, make_server

    server = make_server(source, ServeConfig(port=0, max_wait_ms=20))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        kind, body = multipart(files)
        conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
        conn.request("POST", "/predict", body=body, headers={"Content-Type": kind})
        response = conn.getresponse()
        assert response.status == 200, response.read()
        rows = json.loads(response.read())["predictions"]
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
        server.service.close()
        thread.join()
    return rows


def saved_weights(path) -> dict:
    """Every weight array of a ``.keras`` file, by its path in the file."""
    import zipfile

    import h5py

    out = {}
    with zipfile.ZipFile(path) as z, z.open("model.weights.h5") as f:
        h5py.File(f, "r").visititems(
            lambda name, obj: out.__setitem__(name, obj[()]) if hasattr(obj, "shape") else None
        )
    return out


def assert_killed_run_resumes_exactly(tmp_path, train_args: list[str], kill_after: int = 2):
    """``resnetkit train TRAIN_ARGS`` run whole, and again killed by SIGKILL once epoch
    ``kill_after``'s checkpoint exists, then resumed: the two end on equal weights."""
    import signal
    import subprocess
    import sys
    import time

    def command(*args):
        return [sys.executable, "-m", "resnetkit.cli", "train", *args]

    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    ref = subprocess.run(command(*train_args, "--run-dir", str(tmp_path / "ref")),
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert ref.returncode == 0, ref.stderr[-2000:]
    run = tmp_path / "killed"
    proc = subprocess.Popen(command(*train_args, "--run-dir", str(run)), env=env,
                            stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    checkpoint = run / "checkpoints" / f"epoch-{kill_after:04d}"
    while not checkpoint.is_dir() and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(command("--resume", str(run)), capture_output=True, text=True,
                             env=env, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = saved_weights(tmp_path / "ref" / "model.keras"), saved_weights(run / "model.keras")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
