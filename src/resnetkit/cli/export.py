"""``resnetkit export`` (parity-checked artifacts) and ``resnetkit serve`` (HTTP)."""

from __future__ import annotations

import argparse

from resnetkit.export.runtimes import FORMATS, QUANTIZATIONS, RUNTIMES
from resnetkit.serve.server import ServeConfig  # NumPy and the standard library only

MB = 1024 * 1024


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="SavedModel, ONNX, LiteRT or .keras via Keras' exporters, parity-checked",
        description="Export a trained model with Keras' own exporters (BatchNorm folded into "
        "the convolutions), load the artifact in its own runtime and compare it with the Keras "
        "model on real validation images (max abs difference <= 1e-4; int8: top-1 agreement "
        ">= 99%%). Writes the artifact, labels.txt and model_card.json into --out; a failed "
        "check leaves nothing behind.",
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL", help="run directory or .keras file")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--include-preprocessing",
        action="store_true",
        help="the artifact takes uint8 images: resize/crop/normalize inside the graph "
        "(ONNX and LiteRT: normalize only, see model_card.json)",
    )
    p.add_argument("--quantize", choices=QUANTIZATIONS, help="LiteRT only: full-integer int8")
    p.add_argument("--no-fold", action="store_true", help="keep BatchNorm layers as they are")
    p.add_argument("--data", help="data for the parity check (default: the run's own)")
    p.add_argument("--check-images", type=int, default=256, help="images in the parity check")
    p.add_argument(
        "--min-agreement",
        type=float,
        default=0.99,
        help="int8: least top-1 agreement with the float model (recorded in the card)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=run_export)
    _add_serve_parser(sub)


def _add_serve_parser(sub: argparse._SubParsersAction) -> None:
    d = ServeConfig()  # the flags' defaults are the service's own
    p = sub.add_parser(
        "serve",
        help="HTTP service: POST /predict, GET /health, GET /metadata (dynamic batching)",
        description="Serve a run or an exported artifact on HTTP (127.0.0.1 by default). "
        "POST /predict takes one image as the raw body or several as multipart/form-data and "
        "returns top-k JSON; concurrent requests share forward passes (dynamic batching).",
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL|EXPORT", help="run, .keras file or export")
    p.add_argument("--host", default=d.host, help="address to listen on")
    p.add_argument("--port", type=int, default=d.port, help="port (0: any free port)")
    p.add_argument("--runtime", choices=RUNTIMES, help="runtime of an exported artifact")
    p.add_argument("--max-batch", type=int, default=d.max_batch, help="images per forward pass")
    p.add_argument(
        "--max-wait-ms", type=float, default=d.max_wait_ms, help="wait for a batch to fill"
    )
    p.add_argument("--no-batching", action="store_true", help="one request per forward pass")
    p.add_argument(
        "--max-body-mb", type=float, default=d.max_body_bytes / MB, help="largest request body"
    )
    p.add_argument("--max-pixels", type=int, default=d.max_pixels, help="largest image (pixels)")
    p.add_argument("--max-images", type=int, default=d.max_images, help="images per request")
    p.add_argument("--timeout", type=float, default=d.timeout_s, help="seconds per request")
    p.add_argument("--top-k", type=int, default=d.top_k, help="default top-k (query: ?top_k=N)")
    p.set_defaults(func=run_serve)


def run_export(args: argparse.Namespace) -> int:
    from resnetkit.export import export_model

    result = export_model(
        args.model,
        args.out,
        args.format,
        include_preprocessing=args.include_preprocessing,
        quantize=args.quantize,
        fold_bn=not args.no_fold,
        data=args.data,
        check_count=args.check_images,
        min_agreement=args.min_agreement,
        overwrite=args.overwrite,
    )
    parity = result.card["parity"]
    print(f"parity ({parity['images']} images, {parity['data']}): {parity['verdict']}")
    if "top1_agreement" in parity:  # classification and segmentation
        agreement = "pixel" if "pixel_agreement" in parity else "top-1"
        print(
            f"  {agreement} agreement {parity['top1_agreement']:.2%}, mean abs difference "
            f"{parity['mean_abs_diff']:.2e}"
        )
    size = result.card["artifact_file"]["bytes"]
    print(f"wrote {result.artifact} ({size / 1e6:.2f} MB), labels.txt, model_card.json")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from resnetkit.serve import serve

    config = ServeConfig(
        host=args.host,
        port=args.port,
        max_batch=1 if args.no_batching else args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_body_bytes=int(args.max_body_mb * MB),
        max_pixels=args.max_pixels,
        max_images=args.max_images,
        timeout_s=args.timeout,
        top_k=args.top_k,
    )
    serve(args.model, config, runtime=args.runtime, log=lambda text: print(text, flush=True))
    return 0
