"""The registry, the cache and downloads: verified, atomic, and clear without network."""

import dataclasses
import functools
import hashlib
import http.server
import json
import logging
import socket
import threading

import keras
import numpy as np
import pytest
from helpers import fill_weights, images
from safetensors.numpy import save_file

from resnetkit.cli import main
from resnetkit.download import FileRef
from resnetkit.models import list_models
from resnetkit.weights import (
    REGISTRY,
    ChecksumMismatch,
    DownloadUnavailable,
    create_model,
    fetch_file,
    imagenet_classes,
    torch_state_dict,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNETKIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def server(tmp_path):
    """A static file server on loopback, serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_registry_entries_are_consistent():
    names = set(list_models())
    for spec in REGISTRY.values():
        assert spec.arch in names, spec.name
        assert spec.file.url.startswith("https://"), spec.name
        length = {"md5": 32, "sha256": 64}[spec.file.algorithm]
        assert 8 <= len(spec.file.checksum) <= length, spec.name
        int(spec.file.checksum, 16)
    expected = {"resnet50.keras_imagenet", "resnet50v2.keras_imagenet", "resnet18.tv_in1k"}
    assert expected | {"resnet50.tv2_in1k", "resnext50_32x4d.tv2_in1k"} <= set(REGISTRY)
    assert REGISTRY["resnet50.tv2_in1k"].preprocessing.resize_size == 232
    assert REGISTRY["resnet50.keras_imagenet"].preprocessing.mode == "caffe"
    assert REGISTRY["resnet50v2.keras_imagenet"].preprocessing.mode == "tf"


def test_imagenet_classes_ship_with_the_package():
    classes = imagenet_classes()
    assert len(classes) == 1000 == len(set(classes))
    assert classes[0] == "tench" and classes[1] == "goldfish" and classes[-1] == "toilet tissue"


def test_download_is_verified_and_cached(server, tmp_path):
    root, base = server
    (root / "w-0123.bin").write_bytes(b"weights" * 1000)
    digest = hashlib.sha256(b"weights" * 1000).hexdigest()
    ref = FileRef(base + "w-0123.bin", digest[:8])
    path = fetch_file(ref)
    assert path == tmp_path / "cache" / "weights" / "w-0123.bin"
    assert path.read_bytes() == b"weights" * 1000
    (root / "w-0123.bin").unlink()  # the second call uses the cache
    assert fetch_file(ref) == path
    assert [p.name for p in path.parent.iterdir()] == ["w-0123.bin"]


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    root, base = server
    (root / "bad.bin").write_bytes(b"tampered")
    with pytest.raises(ChecksumMismatch, match="expected deadbeef"):
        fetch_file(FileRef(base + "bad.bin", "deadbeef"))
    cache = tmp_path / "cache" / "weights"
    assert not cache.exists() or not any(cache.iterdir())


def test_a_wrong_hand_placed_file_is_refused_and_removed(tmp_path):
    ref = FileRef("https://example.invalid/x-1234.pth", "1234", "sha256")
    placed = tmp_path / "cache" / "weights" / "x-1234.pth"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"something else")
    with pytest.raises(ChecksumMismatch, match=r"x-1234\.pth"):
        fetch_file(ref)
    assert not placed.exists()


def test_without_network_the_message_says_where_to_put_the_file(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/resnet50-11ad3fa6.pth"
    with pytest.raises(DownloadUnavailable) as err:
        fetch_file(FileRef(url, "11ad3fa6"))
    text = str(err.value)
    assert url in text
    assert str(tmp_path / "cache" / "weights" / "resnet50-11ad3fa6.pth") in text


def test_create_model_from_a_registry_name(server, monkeypatch):
    """End to end: registry entry -> download -> verify -> load -> preprocessing attached."""
    root, base = server
    source = create_model("resnet18", input_shape=(64, 64, 3))
    fill_weights(source)
    save_file(torch_state_dict(source), root / "resnet18-test.safetensors")
    digest = hashlib.sha256((root / "resnet18-test.safetensors").read_bytes()).hexdigest()
    spec = dataclasses.replace(
        REGISTRY["resnet18.tv_in1k"], file=FileRef(base + "resnet18-test.safetensors", digest)
    )
    monkeypatch.setitem(REGISTRY, "resnet18.tv_in1k", spec)

    model = create_model("resnet18", weights="resnet18.tv_in1k", input_shape=(64, 64, 3))
    x = images((1, 64, 64, 3))
    np.testing.assert_array_equal(model(x), source(x))
    assert model.preprocessing == spec.preprocessing
    with pytest.raises(ValueError, match="are for 'resnet18', not 'resnet34'"):
        create_model("resnet34", weights="resnet18.tv_in1k")


def test_preprocessing_is_saved_with_the_model(tmp_path):
    model = create_model(
        "resnet_tiny", preprocessing=REGISTRY["resnet50.tv2_in1k"].preprocessing.to_dict()
    )
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.preprocessing == REGISTRY["resnet50.tv2_in1k"].preprocessing
    assert create_model("resnet_tiny").preprocessing is None


def test_cli_weights_list_shows_every_entry_with_preprocessing(capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name in REGISTRY:
        assert name in out
    assert "resize 232 (bilinear) -> crop 224; torch" in out
    assert main(["weights", "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(REGISTRY)


def test_cli_fetch_without_network_exits_nonzero(monkeypatch, capsys, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/resnet50-11ad3fa6.pth"
    spec = REGISTRY["resnet50.tv2_in1k"]
    monkeypatch.setitem(
        REGISTRY, spec.name, dataclasses.replace(spec, file=FileRef(url, "11ad3fa6"))
    )
    assert main(["weights", "fetch", "resnet50.tv2_in1k"]) == 1
    err = capsys.readouterr().err
    assert url in err and "place it at" in err and "resnet50-11ad3fa6.pth" in err


@pytest.mark.parametrize("out", ["m.keras", "m.weights.h5", "m.safetensors"])
def test_cli_import_writes_each_format(out, tmp_path, capsys):
    source = create_model("resnet18", input_shape=(64, 64, 3))
    fill_weights(source)
    src = tmp_path / "src.safetensors"
    save_file(torch_state_dict(source), src)
    argv = ["weights", "import", str(src), "--arch", "resnet18", "--out", str(tmp_path / out)]
    assert main([*argv, "--input-size", "64", "64", "3"]) == 0
    x = images((1, 64, 64, 3))
    if out.endswith(".keras"):
        model = keras.saving.load_model(tmp_path / out, safe_mode=True)
    elif out.endswith(".weights.h5"):
        model = create_model("resnet18", input_shape=(64, 64, 3))
        model.load_weights(tmp_path / out)
    else:
        model = create_model("resnet18", input_shape=(64, 64, 3), weights=tmp_path / out)
    np.testing.assert_array_equal(model(x), source(x))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


def test_cli_import_errors_name_the_problem(tmp_path, capsys):
    argv = [
        "weights",
        "import",
        str(tmp_path / "none.pth"),
        "--arch",
        "resnet18",
        "--out",
        "x.keras",
    ]
    assert main(argv) == 2
    assert "none.pth" in capsys.readouterr().err


def test_keras_entry_uses_the_headless_file_for_a_new_task(server, monkeypatch, caplog):
    """num_classes != 1000: the registry's no-top file is fetched and the head starts fresh."""
    from helpers import write_keras_h5

    root, base = server
    reference = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(64, 64, 3)
    )
    fill_weights(reference)
    write_keras_h5(reference, root / "r50_notop.h5")
    digest = hashlib.md5((root / "r50_notop.h5").read_bytes()).hexdigest()
    spec = dataclasses.replace(
        REGISTRY["resnet50.keras_imagenet"],
        file=FileRef(base + "missing_top.h5", "0" * 32, "md5"),
        notop_file=FileRef(base + "r50_notop.h5", digest, "md5"),
    )
    monkeypatch.setitem(REGISTRY, spec.name, spec)
    with caplog.at_level(logging.WARNING, logger="resnetkit"):
        model = create_model(
            "resnet50_keras", weights=spec.name, num_classes=10, input_shape=(64, 64, 3)
        )
    assert "the weights have no classifier, the model has 10" in caplog.text
    assert model.preprocessing.mode == "caffe"
    features = keras.Model(model.input, model.get_layer("conv5_block3_out").output)
    x = images((1, 64, 64, 3))
    np.testing.assert_allclose(features(x), reference(x), atol=1e-5)
