"""``resnetkit evaluate``, ``predict``, ``explain`` and ``report``: using a trained model."""

from __future__ import annotations

import argparse
import sys

from resnetkit.data.sources import SPLITS
from resnetkit.explain.methods import METHODS
from resnetkit.export.runtimes import RUNTIMES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy, per-class metrics, confusion matrix, calibration, mistakes",
        description="Evaluate a trained model on labelled data with the run's class map and "
        "preprocessing; writes metrics.json and charts.",
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL", help="run directory or .keras file")
    p.add_argument("--data", required=True, help="data set name, image folder or .csv manifest")
    p.add_argument("--split", choices=SPLITS, help="default: test, else val, else all")
    p.add_argument("--tta", action="store_true", help="average with the mirror image")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--out", help="output folder (default: RUN_DIR/evaluation/DATA-SPLIT)")
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser("predict", help="top-k classes for image files, folders or globs")
    p.add_argument(
        "model",
        metavar="RUN_DIR|MODEL|EXPORT",
        help="run directory, .keras file, or an export of `resnetkit export` (its folder, "
        ".onnx, .tflite or SavedModel)",
    )
    p.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--tta", action="store_true", help="average with the mirror image")
    p.add_argument("--output", help="also write the predictions to a .csv or .json file")
    p.add_argument(
        "--out", metavar="DIR", help="segmentation runs: the folder for masks and overlays"
    )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        help="runtime of an exported artifact (default: the one its model_card.json names)",
    )
    p.set_defaults(func=run_predict)
    _add_explain_parser(sub)

    p = sub.add_parser("report", help="(re)write a run's self-contained report.html")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=run_report)


def _add_explain_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="Grad-CAM heatmaps: where each image holds the evidence for a class",
        description="Overlay a Grad-CAM (or Grad-CAM++) heatmap of one feature map on each "
        "image as the network sees it (resized, center-cropped); writes one PNG per image "
        "and grid.png.",
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL", help="run directory or .keras file")
    p.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--layer", metavar="NAME", help="feature map: stem, stage1, ... (default: last stage)"
    )
    p.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help="explain this class (default: each image's predicted class)",
    )
    p.add_argument("--method", choices=METHODS, default="gradcam")
    p.add_argument("--alpha", type=float, default=0.4, help="heatmap opacity, 0..1")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=run_explain)


def run_evaluate(args: argparse.Namespace) -> int:
    from resnetkit.tasks import saved_task

    if saved_task(args.model) == "detection":
        from resnetkit.evaluate.detection import evaluate_detection, format_detection_scores

        batch = min(args.batch_size, 8)
        scores, out = evaluate_detection(args.model, args.data, split=args.split,
                                         batch_size=batch, out=args.out)  # fmt: skip
        print(format_detection_scores(scores))
        print(f"\nwrote {out / 'metrics.json'}, {out / 'detections.json'}")
        return 0
    if _is_segmentation_run(args.model):
        from resnetkit.evaluate.segmentation import evaluate_segmentation, format_scores

        batch = min(args.batch_size, 8)  # whole images, not crops
        scores, out = evaluate_segmentation(args.model, args.data, split=args.split,
                                            batch_size=batch, out=args.out)  # fmt: skip
        print(format_scores(scores))
        print(f"\nwrote {out / 'metrics.json'}")
        return 0
    from resnetkit.evaluate.evaluation import evaluate_on_data
    from resnetkit.tasks.classify.evaluation import format_metrics
    from resnetkit.tasks.classify.predictor import load_classifier

    classifier = load_classifier(args.model)
    ev, out = evaluate_on_data(
        classifier,
        args.data,
        split=args.split,
        tta=args.tta,
        batch_size=args.batch_size,
        out=args.out,
    )
    print(format_metrics(ev.metrics))
    print(
        f"\nwrote {out} (metrics.json, predictions.csv, confusion matrices, reliability, mistakes)"
    )
    return 0


def _is_segmentation_run(path: str) -> bool:
    from resnetkit.tasks import saved_task

    return saved_task(path) == "segmentation"


def run_predict(args: argparse.Namespace) -> int:
    from resnetkit.export.artifacts import load_predictor
    from resnetkit.tasks.classify.predictor import expand_paths

    paths = expand_paths(args.images)
    predictor = load_predictor(args.model, args.runtime)  # a run, .keras or an export
    task = getattr(predictor, "task", "classification")
    if task == "detection":
        return _predict_boxes(args, paths, predictor)
    if task == "segmentation":
        return _predict_masks(args, paths, predictor)
    from resnetkit.tasks.classify.rows import format_table, predict_files, write_rows

    rows = predict_files(
        predictor, paths, top_k=args.top_k, batch_size=args.batch_size, tta=args.tta
    )
    print(format_table(rows))
    if args.output:
        print(f"wrote {write_rows(rows, args.output)}")
    failed = sum("error" in r for r in rows)
    if failed:
        print(f"{failed} of {len(rows)} file(s) could not be read (see above)", file=sys.stderr)
    return 1 if failed == len(rows) else 0


def _predict_masks(args: argparse.Namespace, paths: list, predictor) -> int:
    from resnetkit.tasks.segment.predict import predict_masks

    if not args.out:
        raise ValueError("a segmentation model writes masks: give --out DIR")
    rows = predict_masks(predictor, paths, args.out)
    for row in rows:
        if "error" in row:
            print(f"{_shown(row['file'])}: error: {row['error']}", file=sys.stderr)
            continue
        top = sorted(row["shares"].items(), key=lambda kv: -kv[1])[:3]
        shares = ", ".join(f"{name} {share:.0%}" for name, share in top)
        print(f"{_shown(row['file'])} -> {_shown(row['mask'])}  ({shares})")
    print(f"wrote {args.out}/predictions.json")
    failed = sum("error" in r for r in rows)
    return 1 if failed == len(rows) else 0


def _predict_boxes(args: argparse.Namespace, paths: list, predictor) -> int:
    from resnetkit.tasks.detect.predictor import predict_boxes

    if not args.out:
        raise ValueError("a detection model draws its boxes: give --out DIR")
    rows = predict_boxes(predictor, paths, args.out)
    for row in rows:
        if "error" in row:
            print(f"{_shown(row['file'])}: error: {row['error']}", file=sys.stderr)
            continue
        best = ", ".join(f"{d['class']} {d['score']:.2f}" for d in row["detections"][:3])
        print(f"{_shown(row['file'])} -> {_shown(row['picture'])}  "
              f"({len(row['detections'])} boxes; best: {best or 'none'})")  # fmt: skip
    print(f"wrote {args.out}/predictions.json")
    return 1 if all("error" in r for r in rows) else 0


def _shown(text: object) -> str:
    """A file name for print(): names that are not UTF-8 must not crash it."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def run_explain(args: argparse.Namespace) -> int:
    from resnetkit.explain import class_index_by_name, explain_files
    from resnetkit.tasks.classify.predictor import expand_paths, load_classifier

    paths = expand_paths(args.images)
    classifier = load_classifier(args.model)
    names = classifier.class_names
    class_index = None if args.class_name is None else class_index_by_name(names, args.class_name)
    result = explain_files(
        classifier,
        paths,
        args.out,
        layer=args.layer,
        class_index=class_index,
        method=args.method,
        alpha=args.alpha,
        batch_size=args.batch_size,
    )
    for row in result.rows:
        if not hasattr(row, "output"):
            print(f"{_shown(row.path)}: unreadable: {row.reason}")
            continue
        predicted = names[row.predicted_index]
        note = "" if row.predicted_index == row.class_index else f", predicted {predicted}"
        explained = f"{names[row.class_index]} (p={row.probability:.3f}{note})"
        print(f"{_shown(row.path)}: {explained} -> {_shown(row.output)}")
    if result.grid is not None:
        print(f"wrote {_shown(result.grid)} ({result.grid_count} images)")
    failed = len(result.bad)
    if failed:
        total = len(result.rows)
        print(f"{failed} of {total} file(s) could not be read (see above)", file=sys.stderr)
    return 1 if failed == len(result.rows) else 0


def run_report(args: argparse.Namespace) -> int:
    from resnetkit.report import write_report

    print(f"wrote {write_report(args.run_dir)}")
    return 0
