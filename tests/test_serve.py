"""resnetkit serve: endpoints, answers equal to the run's own predictions, every limit as a
4xx with a reason, dynamic batching, and serving an exported artifact."""

import http.client
import io
import json
import threading
import time

import numpy as np
import pytest
from helpers import multipart, png
from PIL import Image

from resnetkit.serve import Batcher, ServeConfig, make_server
from resnetkit.tasks.classify.predictor import load_classifier


def request(server, method, path, body=None, headers=None):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def served(digits_run):
    """The digits run served in this process on a free port, batches waiting up to 50 ms."""
    server = make_server(digits_run, ServeConfig(port=0, max_wait_ms=50, max_body_bytes=200_000))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    server.service.close()
    thread.join()


@pytest.fixture(scope="module")
def digits(digits_run):
    from resnetkit.data import load_data

    images = load_data("digits", val_fraction=0).splits["test"].arrays[:12]
    return images, load_classifier(digits_run).predict_arrays(images)


def test_health_and_metadata(served):
    status, health = request(served, "GET", "/health")
    assert status == 200 and health["status"] == "ok"
    status, meta = request(served, "GET", "/metadata")
    assert status == 200
    assert meta["classes"] == [str(i) for i in range(10)]
    assert meta["input"]["channels"] == 1 and meta["preprocessing"]["crop_size"] == 8
    assert meta["batching"]["max_batch"] == 32


def test_predictions_equal_the_runs_own(served, digits):
    images, want = digits
    status, out = request(
        served, "POST", "/predict?top_k=3", png(images[0]), {"Content-Type": "image/png"}
    )
    assert status == 200
    (row,) = out["predictions"]
    assert len(row["top"]) == 3
    order = np.argsort(want[0])[::-1][:3]
    assert [t["class"] for t in row["top"]] == [str(i) for i in order]
    np.testing.assert_allclose([t["probability"] for t in row["top"]], want[0][order], atol=1e-5)

    # Several images in one multipart request, any size: answers in the order sent.
    big = np.asarray(Image.fromarray(images[1][..., 0]).resize((40, 30)))[..., None]
    files = {"a.png": png(images[2]), "b.jpg": png(big), "c.png": png(images[3])}
    content_type, body = multipart(files)
    status, out = request(served, "POST", "/predict", body, {"Content-Type": content_type})
    assert status == 200
    rows = out["predictions"]
    assert [r["file"] for r in rows] == list(files)
    want_big = load_classifier(served.service.source).predict_arrays([big])[0]
    for row, p in zip(rows, [want[2], want_big, want[3]], strict=True):
        assert row["top"][0]["class"] == str(int(p.argmax()))
        assert row["top"][0]["probability"] == pytest.approx(float(p.max()), abs=1e-5)


def test_bad_requests_get_4xx_with_a_reason(served, digits):
    images, _ = digits
    good = png(images[0])
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)
    noisy = png(noise[..., None])
    bomb = io.BytesIO()
    Image.new("L", (9000, 5000)).save(bomb, "PNG")  # 45 MP, compresses to a few KB
    too_many, too_many_body = multipart({f"{i}.png": good for i in range(65)})
    cases = [
        ("POST", "/predict", b"not an image", "image/png", 400, "cannot decode"),
        ("POST", "/predict", noisy[: len(noisy) // 2], "image/png", 400, "cannot decode"),
        ("POST", "/predict", b"", "image/png", 400, "empty body"),
        ("POST", "/predict", bomb.getvalue(), "image/png", 413, "too many pixels"),
        ("POST", "/predict", b"x" * 200_001, "image/png", 413, "exceeds the limit"),
        ("POST", "/predict", good, "text/plain", 415, "unsupported Content-Type"),
        ("POST", "/predict", b"--x\r\nnothing", "multipart/form-data; boundary=x", 400, "no file"),
        ("POST", "/predict", too_many_body, too_many, 413, "65 images"),
        ("POST", "/predict?top_k=zero", good, "image/png", 400, "top_k"),
        ("POST", "/elsewhere", good, "image/png", 404, "no such endpoint"),
        ("GET", "/predict", None, None, 405, "POST"),
    ]
    for method, path, body, content_type, want_status, reason in cases:
        headers = {"Content-Type": content_type} if content_type else {}
        status, out = request(served, method, path, body, headers)
        assert (status, reason in out["error"]) == (want_status, True), (path, out)
        assert out["status"] == status
        assert "object at 0x" not in out["error"]  # no Python repr reaches the client
    # Still serving, and every refusal was counted.
    status, health = request(served, "GET", "/health")
    assert status == 200 and health["responses"].get("500") is None
    status, _ = request(served, "POST", "/predict", good, {"Content-Type": "image/png"})
    assert status == 200


def test_a_missing_content_length_is_refused(served):
    host, port = served.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.putrequest("POST", "/predict")
    conn.putheader("Content-Type", "image/png")
    conn.endheaders()  # no Content-Length
    response = conn.getresponse()
    assert response.status == 411 and b"Content-Length" in response.read()
    conn.close()


def test_concurrent_requests_share_batches(served, digits):
    images, want = digits
    before = served.service.batcher.stats()
    results = [None] * len(images)

    def client(i):
        results[i] = request(
            served, "POST", "/predict?top_k=1", png(images[i]), {"Content-Type": "image/png"}
        )

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = served.service.batcher.stats()
    for (status, out), p in zip(results, want, strict=True):
        assert status == 200 and out["predictions"][0]["top"][0]["class"] == str(p.argmax())
    batches = after["batches"] - before["batches"]
    assert after["images"] - before["images"] == len(images)
    assert batches < len(images)  # 12 requests within 50 ms of each other: fewer passes


def test_batcher_collects_until_full_or_timed_out():
    seen = []

    def predict(images):
        seen.append(len(images))
        return np.asarray(images, np.float32)[:, None]

    batcher = Batcher(predict, max_batch=4, max_wait=0.3)
    try:
        futures = [batcher.submit([np.float32(i)]) for i in range(6)]
        futures.append(batcher.submit([np.float32(6)] * 5))  # larger than a batch: alone
        rows = [f.result(timeout=10) for f in futures]
    finally:
        batcher.close()
    # Full at 4; then 2 (the 5-image request would overflow them); then that one alone.
    assert seen == [4, 2, 5]
    assert [float(r[0, 0]) for r in rows[:6]] == [0, 1, 2, 3, 4, 5]
    assert rows[6].shape == (5, 1)
    assert batcher.stats()["largest_batch"] == 5

    def broken(images):
        raise RuntimeError("model failed")

    batcher = Batcher(broken, max_batch=2, max_wait=0)
    try:
        with pytest.raises(RuntimeError, match="model failed"):
            batcher.submit([np.zeros(1)]).result(timeout=10)
    finally:
        batcher.close()


def test_serving_an_exported_artifact(digits_run, digits, tmp_path):
    from resnetkit.export import export_model

    export_model(digits_run, tmp_path / "tflite", "litert", check_count=32)
    server = make_server(tmp_path / "tflite", ServeConfig(port=0, max_batch=1))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        images, want = digits
        status, meta = request(server, "GET", "/metadata")
        assert meta["runtime"] == "litert" and meta["model_card"]["format"] == "litert"
        started = time.perf_counter()
        for i in range(4):
            status, out = request(
                server, "POST", "/predict", png(images[i]), {"Content-Type": "image/png"}
            )
            assert status == 200
            top = out["predictions"][0]["top"][0]
            assert top["class"] == str(want[i].argmax())
            assert top["probability"] == pytest.approx(float(want[i].max()), abs=1e-4)
        assert time.perf_counter() - started < 30
    finally:
        server.shutdown()
        server.server_close()
        server.service.close()
        thread.join()
