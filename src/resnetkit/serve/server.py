"""``resnetkit serve``: a small HTTP service around a run or an exported artifact.

    POST /predict     one image as the raw body (image/*, application/octet-stream), or
                      several as multipart/form-data file fields; ``?top_k=N``
                      → {"predictions": [{"top": [{"class", "probability"}, ...]}, ...]}
    GET  /health      liveness and batching counters
    GET  /metadata    classes, input, preprocessing, runtime, limits

Standard library only: ``ThreadingHTTPServer`` (one thread per connection, HTTP/1.1
keep-alive) in front of one ``Batcher`` worker that runs the model (dynamic batching). Each
request thread reads and decodes its own images (Pillow, the same decoder as training), so
decoding runs in parallel with inference.

Limits, each answered with a 4xx and a reason rather than an exception: body size (413),
pixels per image (413, checked from the header before decoding), images per request (413),
undecodable or empty images and malformed multipart (400), unknown content type (415), a
body that does not arrive within the request timeout (408). Only an overloaded queue or a
forward pass that overruns the timeout gives 503; a bug gives 500 and the service goes on.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import numpy as np

from resnetkit.data.checks import BadImageError, decode_image
from resnetkit.serve.batcher import Batcher, Overloaded

if TYPE_CHECKING:
    from resnetkit.export.artifacts import ArtifactClassifier
    from resnetkit.tasks.classify.predictor import Classifier


@dataclass(frozen=True)
class ServeConfig:
    """Where to listen, how to batch, and the limits on what a request may hold."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_batch: int = 32  # images per forward pass; 1 turns batching off
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    max_body_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000  # per image, width × height
    max_images: int = 64  # per request
    timeout_s: float = 30.0  # to receive a request, and to wait for its prediction
    top_k: int = 5
    max_queue: int = 1024  # requests waiting for the model before 503

    def __post_init__(self):
        for name in ("max_batch", "max_body_bytes", "max_pixels", "max_images", "top_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.timeout_s <= 0:
            raise ValueError("max_wait_ms must be >= 0 and timeout_s > 0")


class RequestError(Exception):
    """A request the service refuses: HTTP status and the reason sent back."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PredictionService:
    """A classifier (run or artifact), its batcher and the request logic, without HTTP."""

    def __init__(
        self, classifier: Classifier | ArtifactClassifier, config: ServeConfig, *, source: str = ""
    ):
        self.classifier = classifier
        self.config = config
        self.source = source
        self.started = time.time()
        # One forward pass now, so that the first request does not pay for tracing.
        size = classifier.prep.crop_size
        batch_predictor(classifier, 1)([np.zeros((size, size, classifier.channels), np.uint8)])
        self.batcher = Batcher(
            batch_predictor(classifier, config.max_batch),
            max_batch=config.max_batch,
            max_wait=config.max_wait_ms / 1000,
            max_queue=config.max_queue,
        )
        self._lock = threading.Lock()
        self.responses: dict[int, int] = {}

    def count(self, status: int) -> None:
        with self._lock:
            self.responses[status] = self.responses.get(status, 0) + 1

    def metadata(self) -> dict:
        c = self.classifier
        card = getattr(c, "card", None)
        return {
            "model": self.source,
            "runtime": getattr(c, "runtime", "keras (run)"),
            "classes": c.class_names,
            "input": {
                "channels": c.channels,
                "accepts": "any image Pillow decodes (JPEG, PNG, BMP, GIF, WebP, TIFF)",
            },
            "preprocessing": c.prep.to_dict(),
            "model_card": card,
            "batching": {
                "max_batch": self.config.max_batch,
                "max_wait_ms": self.config.max_wait_ms,
            },
            "limits": {
                k: getattr(self.config, k)
                for k in ("max_body_bytes", "max_pixels", "max_images", "timeout_s")
            },
        }

    def health(self) -> dict:
        with self._lock:
            responses = {str(k): v for k, v in sorted(self.responses.items())}
        return {
            "status": "ok",
            "uptime_s": round(time.time() - self.started, 1),
            "responses": responses,
            **self.batcher.stats(),
        }

    def images_from_body(self, content_type: str, body: bytes) -> list[tuple[str | None, bytes]]:
        """(file name or None, bytes) per image in a request body."""
        kind = content_type.split(";")[0].strip().lower()
        if not body:
            raise RequestError(400, "empty body: send an image, or multipart/form-data files")
        if kind == "multipart/form-data":
            return _multipart_files(content_type, body)
        if kind.startswith("image/") or kind in ("application/octet-stream", ""):
            return [(None, body)]
        raise RequestError(
            415,
            f"unsupported Content-Type {kind!r}: send image/* or application/octet-stream "
            "bytes, or multipart/form-data",
        )

    def decode(self, files: list[tuple[str | None, bytes]]) -> list[np.ndarray]:
        if len(files) > self.config.max_images:
            raise RequestError(
                413, f"{len(files)} images in one request; the limit is {self.config.max_images}"
            )
        images = []
        for name, data in files:
            try:
                images.append(decode_image(data, self.classifier.channels, self.config.max_pixels))
            except BadImageError as e:
                which = f"file {name!r}" if name is not None else "image"
                status = 413 if str(e).startswith("too many pixels") else 400
                limit = f" (limit {self.config.max_pixels:,} pixels)" if status == 413 else ""
                raise RequestError(status, f"{which}: {e}{limit}") from None
        return images

    def predict(self, images: list[np.ndarray], top_k: int) -> list[dict]:
        """Rows of top-k classes, through the batcher."""
        try:
            future = self.batcher.submit(images)
        except Overloaded as e:
            raise RequestError(503, f"overloaded: {e}; retry later") from None
        try:
            probs = future.result(timeout=self.config.timeout_s)
        except FutureTimeout:
            raise RequestError(503, "the prediction did not finish within the timeout") from None
        names = self.classifier.class_names
        task = getattr(self.classifier, "task", "classification")
        if task == "detection":  # boxes in each image's own pixels, best first
            return [{"detections": found} for found in probs]
        if task == "segmentation":
            from resnetkit.tasks.segment.predict import mask_row

            return [mask_row(mask, names) for mask in probs]
        from resnetkit.tasks.classify.rows import top_classes

        return [{"top": top_classes(p, names, top_k)} for p in probs]

    def close(self) -> None:
        self.batcher.close()


def batch_predictor(classifier, batch_size: int) -> Callable[[list[np.ndarray]], np.ndarray]:
    """``images -> probabilities`` for the batcher: the predictor's own ``predict_arrays``
    (a run's model and an artifact prepare images the same way, ``prepare_images``)."""
    return lambda images: classifier.predict_arrays(images, batch_size=batch_size)


def _multipart_files(content_type: str, body: bytes) -> list[tuple[str | None, bytes]]:
    """The file fields of a multipart/form-data body (fields without a file name are
    ignored)."""
    if "boundary=" not in content_type:
        raise RequestError(400, "multipart/form-data without a boundary")
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise RequestError(400, "malformed multipart/form-data body")
    files = []
    for part in message.iter_parts():
        name = part.get_filename()
        if name is None:
            continue
        files.append((name, part.get_payload(decode=True) or b""))
    if not files:
        defects = ", ".join(type(d).__name__ for d in message.defects)
        raise RequestError(
            400, "no file field in the multipart body" + (f" ({defects})" if defects else "")
        )
    return files


class Handler(BaseHTTPRequestHandler):
    """One connection; ``self.server.service`` does the work."""

    protocol_version = "HTTP/1.1"
    server_version = "resnetkit"
    error_content_type = "application/json"
    error_message_format = '{"error": "%(message)s", "status": %(code)d}'

    def setup(self):
        self.timeout = self.server.service.config.timeout_s  # socket timeout: slow clients
        super().setup()

    def log_message(self, format, *args):  # quiet: errors only, see _send
        pass

    def do_GET(self):
        service = self.server.service
        path = urlsplit(self.path).path
        if path == "/health":
            self._send(200, service.health())
        elif path == "/metadata":
            self._send(200, service.metadata())
        elif path == "/predict":
            self._send(405, {"error": "use POST for /predict"}, allow="POST")
        else:
            self._send(404, {"error": f"no such endpoint: {path} (/predict, /health, /metadata)"})

    def do_POST(self):
        service = self.server.service
        started = time.perf_counter()
        url = urlsplit(self.path)
        try:
            if url.path != "/predict":
                raise RequestError(404, f"no such endpoint: {url.path} (POST /predict)")
            top_k = _top_k(parse_qs(url.query), service.config.top_k)
            body = self._read_body(service.config.max_body_bytes)
            files = service.images_from_body(self.headers.get("Content-Type", ""), body)
            rows = service.predict(service.decode(files), top_k)
            for row, (name, _) in zip(rows, files, strict=True):
                if name is not None:
                    row["file"] = name
            ms = round((time.perf_counter() - started) * 1000, 2)
            self._send(200, {"predictions": rows, "ms": ms})
        except RequestError as e:
            self._send(e.status, {"error": e.reason})
        except Exception as e:  # a bug: answer, log, keep serving
            self._send(500, {"error": f"internal error: {type(e).__name__}: {e}"})

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise RequestError(411, "chunked bodies are not accepted; send Content-Length")
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise RequestError(411, "Content-Length is required")
        try:
            size = int(length)
            if size < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise RequestError(400, f"bad Content-Length {length!r}") from None
        if size > limit:
            # A body up to 4× the limit is read and dropped, so that the client, still sending
            # it, gets the 413 instead of a reset connection; a larger one is not read at all.
            if not (size <= 4 * limit and self._drain(size)):
                self.close_connection = True
            raise RequestError(413, f"body of {size:,} bytes exceeds the limit of {limit:,}")
        try:
            body = self.rfile.read(size)
        except TimeoutError:
            self.close_connection = True
            raise RequestError(408, "the body did not arrive within the timeout") from None
        if len(body) != size:
            self.close_connection = True
            raise RequestError(400, f"body ended after {len(body)} of {size} bytes")
        return body

    def _drain(self, size: int) -> bool:
        """Read and drop ``size`` bytes of body; False if they do not all arrive in time."""
        try:
            while size > 0:
                chunk = self.rfile.read(min(size, 1 << 16))
                if not chunk:
                    return False
                size -= len(chunk)
        except TimeoutError:
            return False
        return True

    def _send(self, status: int, payload: dict, **headers) -> None:
        self.server.service.count(status)
        if status >= 500:
            print(f"resnetkit serve: {status} {self.path}: {payload.get('error')}", file=sys.stderr)
        if status >= 400:
            payload = {**payload, "status": status}
        data = json.dumps(payload, ensure_ascii=False).encode("utf8")
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key.title(), value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client left; nothing to answer


def _top_k(query: dict, default: int) -> int:
    values = query.get("top_k")
    if not values:
        return default
    try:
        k = int(values[-1])
    except ValueError:
        k = 0
    if k < 1:
        raise RequestError(400, f"top_k must be a positive integer; got {values[-1]!r}")
    return k


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # listen backlog: bursts of new connections are not refused

    def __init__(self, service: PredictionService):
        self.service = service
        super().__init__((service.config.host, service.config.port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def make_server(path: str | Path, config: ServeConfig, *, runtime: str | None = None) -> Server:
    """The server for a run or artifact, listening (``config.port`` 0: a free port) but not yet
    serving; run ``serve_forever()`` and, when done, ``shutdown()`` and ``close()``."""
    from resnetkit.export.artifacts import load_predictor

    service = PredictionService(load_predictor(path, runtime), config, source=str(path))
    try:
        return Server(service)
    except OSError:
        service.close()
        raise


def close(server: Server) -> None:
    """Stop accepting, close the socket and the batcher."""
    server.server_close()
    server.service.close()


def serve(path: str | Path, config: ServeConfig, *, runtime: str | None = None, log=print) -> None:
    """Serve until SIGINT or SIGTERM."""
    server = make_server(path, config, runtime=runtime)
    stop = threading.Event()

    def on_signal(signum, frame):
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    meta = server.service.metadata()
    batching = (
        f"batches of up to {config.max_batch}, waiting up to {config.max_wait_ms:g} ms"
        if config.max_batch > 1
        else "batching off"
    )
    log(
        f"serving {path} ({meta['runtime']}, {len(meta['classes'])} classes) on {server.url} "
        f"[{batching}]; POST /predict, GET /health, GET /metadata"
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        close(server)
        log("stopped")
