"""HTTP serving with dynamic batching for runs and exported artifacts (see server.py)."""

from resnetkit.serve.batcher import Batcher, Overloaded
from resnetkit.serve.server import (
    PredictionService,
    RequestError,
    ServeConfig,
    make_server,
    serve,
)

__all__ = [
    "Batcher",
    "Overloaded",
    "PredictionService",
    "RequestError",
    "ServeConfig",
    "make_server",
    "serve",
]
