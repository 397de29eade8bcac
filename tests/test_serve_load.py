"""Load tier: `resnetkit serve` under 2,000 requests from 16 concurrent clients on loopback.

    make test-load     (= pytest -m load -s tests/test_serve_load.py)

One request in ten is malformed (garbage, truncated PNG, empty body, too many pixels, wrong
content type, a multipart body without a file, a body over the size limit). The server runs
as its own process through the CLI, once with dynamic batching and once with it off. Passes
only with zero 5xx, zero lost requests (every request gets an HTTP answer), a 4xx for every
malformed request and, for every good one, the run's own top-1 class and probability (within
1e-4 of ``Classifier.predict_arrays`` in this process). Writes latency percentiles and
throughput for both settings to benchmarks/results/serve_load.json.
"""

import http.client
import io
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from helpers import multipart, png
from PIL import Image

from resnetkit.tasks.classify.predictor import load_classifier
from resnetkit.training.hardware import cpu_name

pytestmark = pytest.mark.load

REQUESTS = 2000
CLIENTS = 16
MALFORMED_EVERY = 10  # one request in ten
MAX_BODY_MB = 1
RESULT = Path(__file__).parents[1] / "benchmarks" / "results" / "serve_load.json"
COMMAND = "make test-load  (pytest -m load -s tests/test_serve_load.py)"


def _malformed() -> list[tuple[str, str, bytes, int]]:
    """(kind, content type, body, expected status)."""
    noise = np.random.default_rng(1).integers(0, 256, (48, 48, 1), np.uint8)
    noisy = png(noise)
    bomb = io.BytesIO()
    Image.new("L", (8000, 6000)).save(bomb, "PNG")  # 48 MP > the 40 MP limit, a few KB
    return [
        ("garbage", "image/png", os.urandom(3000), 400),
        ("truncated", "image/png", noisy[: len(noisy) // 2], 400),
        ("empty", "image/png", b"", 400),
        ("too_many_pixels", "image/png", bomb.getvalue(), 413),
        ("wrong_type", "text/plain", noisy, 415),
        ("no_file", "multipart/form-data; boundary=b", b"--b\r\n\r\nhello\r\n--b--\r\n", 400),
        ("too_large", "image/png", b"\0" * int(MAX_BODY_MB * 1.5 * 2**20), 413),
    ]


@pytest.fixture(scope="module")
def workload(digits_run):
    """The 2,000 requests in order, and each good one's expected rows."""
    from resnetkit.data import load_data

    images = load_data("digits", val_fraction=0).splits["test"].arrays
    probs = load_classifier(digits_run).predict_arrays(images)
    bad = _malformed()
    requests = []
    for i in range(REQUESTS):
        if i % MALFORMED_EVERY == MALFORMED_EVERY - 1:
            kind, content_type, body, status = bad[(i // MALFORMED_EVERY) % len(bad)]
            requests.append({"kind": kind, "type": content_type, "body": body, "status": status})
            continue
        j = (i * 7) % len(images)
        if i % 7 == 0:  # now and then several images in one multipart request
            picks = [j, (j + 1) % len(images), (j + 2) % len(images)]
            content_type, body = multipart({f"{k}.png": png(images[k]) for k in picks})
        else:
            picks, content_type, body = [j], "image/png", png(images[j])
        requests.append(
            {
                "kind": "good",
                "type": content_type,
                "body": body,
                "status": 200,
                "want": probs[picks],
            }
        )
    return requests


def _start(run_dir, *options) -> tuple[subprocess.Popen, str, int]:
    command = [sys.executable, "-m", "resnetkit.cli", "serve", str(run_dir), "--port", "0"]
    command += ["--max-body-mb", str(MAX_BODY_MB), *options]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # "serving ... on http://127.0.0.1:PORT ..." once listening
    found = re.search(r"http://([\d.]+):(\d+)", line)
    if not found:
        proc.kill()
        pytest.fail(f"server did not start: {line}{proc.stderr.read()}")
    return proc, found.group(1), int(found.group(2))


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def _get(host: str, port: int, path: str) -> dict:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def _load(host: str, port: int, requests: list[dict]) -> tuple[list, float]:
    """Send every request from ``CLIENTS`` threads, each on its own keep-alive connection;
    (per request: (status or None if lost, body or error, seconds), wall seconds)."""
    results: list = [None] * len(requests)
    next_index = iter(range(len(requests)))
    lock = threading.Lock()

    def client():
        conn = None
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            r = requests[i]
            conn = conn or http.client.HTTPConnection(host, port, timeout=60)
            started = time.perf_counter()
            try:
                conn.request(
                    "POST", "/predict", body=r["body"], headers={"Content-Type": r["type"]}
                )
                response = conn.getresponse()
                body = response.read()
                results[i] = (response.status, body, time.perf_counter() - started)
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                results[i] = (None, f"{type(e).__name__}: {e}", time.perf_counter() - started)
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - started


def _judge(requests: list[dict], results: list) -> dict:
    """Counts, and every failure with its reason."""
    statuses: dict[str, int] = {}
    lost, wrong, server_errors, unrefused = [], [], [], []
    latencies = []
    images = 0
    for i, (r, (status, body, seconds)) in enumerate(zip(requests, results, strict=True)):
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status is None:
            lost.append((i, body))
            continue
        if status >= 500:
            server_errors.append((i, status, body[:200]))
        if r["kind"] != "good":
            if not 400 <= status < 500 or status != r["status"]:
                unrefused.append((i, r["kind"], status))
            continue
        latencies.append(seconds)
        if status != 200:
            wrong.append((i, status, body[:200]))
            continue
        rows = json.loads(body)["predictions"]
        images += len(rows)
        for row, p in zip(rows, r["want"], strict=True):
            top = row["top"][0]
            if top["class"] != str(int(p.argmax())) or abs(top["probability"] - p.max()) > 1e-4:
                wrong.append((i, top, float(p.max())))
    return {
        "statuses": statuses,
        "lost": lost,
        "server_errors": server_errors,
        "wrong": wrong,
        "malformed_not_refused": unrefused,
        "latencies": latencies,
        "good_images": images,
    }


def _summary(judged: dict, wall: float, health: dict) -> dict:
    ms = np.asarray(judged["latencies"]) * 1000
    good = len(ms)
    return {
        "requests": REQUESTS,
        "good_requests": good,
        "malformed_requests": REQUESTS - good,
        "statuses": judged["statuses"],
        "lost": len(judged["lost"]),
        "server_errors": len(judged["server_errors"]),
        "wrong_answers": len(judged["wrong"]),
        "wall_seconds": round(wall, 2),
        "throughput_requests_per_s": round(REQUESTS / wall, 1),
        "throughput_good_images_per_s": round(judged["good_images"] / wall, 1),
        "latency_ms_good": {
            "p50": round(float(np.percentile(ms, 50)), 2),
            "p90": round(float(np.percentile(ms, 90)), 2),
            "p99": round(float(np.percentile(ms, 99)), 2),
            "max": round(float(ms.max()), 2),
        },
        "server_batches": health["batches"],
        "server_mean_batch_size": health["mean_batch_size"],
        "server_largest_batch": health["largest_batch"],
    }


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("resnetkit", "keras", "tensorflow-cpu", "tensorflow", "numpy", "pillow"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def test_load(digits_run, workload):
    settings = {
        "batching": ["--max-batch", "32", "--max-wait-ms", "5"],
        "no_batching": ["--no-batching"],
    }
    report = {}
    for name, options in settings.items():
        proc, host, port = _start(digits_run, *options)
        try:
            _load(host, port, workload[:64])  # warm-up, not counted: connections, tracing
            before = _get(host, port, "/health")
            results, wall = _load(host, port, workload)
            after = _get(host, port, "/health")
        finally:
            stderr = _stop(proc)
        health = {
            k: after[k] - before[k] for k in ("batches", "images") if isinstance(after[k], int)
        }
        health["mean_batch_size"] = round(health["images"] / max(health["batches"], 1), 2)
        health["largest_batch"] = after["largest_batch"]
        judged = _judge(workload, results)
        report[name] = {"server_options": options, **_summary(judged, wall, health)}
        print(f"\n{name}: {json.dumps(report[name], indent=1)}")
        assert not judged["lost"], judged["lost"][:5]
        assert not judged["server_errors"], (judged["server_errors"][:5], stderr[-2000:])
        assert not judged["malformed_not_refused"], judged["malformed_not_refused"][:5]
        assert not judged["wrong"], judged["wrong"][:5]
        assert proc.returncode == 0, stderr[-2000:]  # a clean stop on SIGTERM

    on, off = report["batching"], report["no_batching"]
    result = {
        "what": "resnetkit serve on loopback: 2,000 POST /predict from 16 concurrent keep-alive "
        "clients (threads in one process), 10% malformed; the digits run (resnet_tiny, 8x8 grey "
        "PNGs; one request in seven carries 3 images); server and clients share the machine",
        "command": COMMAND,
        "hardware": {
            "cpu": cpu_name(),
            "cpus": os.cpu_count(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "versions": _versions(),
        "malformed_kinds": [k for k, *_ in _malformed()],
        **report,
        "batching_speedup": round(
            on["throughput_requests_per_s"] / off["throughput_requests_per_s"], 2
        ),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {RESULT}; batching speedup {result['batching_speedup']}x")
