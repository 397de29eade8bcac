"""Grad-CAM: the heatmaps point at the evidence, the arithmetic is the published one, and
`resnetkit explain` writes what it says.

The main check trains ``resnet_tiny`` (about 60 steps, seconds) to name a small pattern
placed anywhere in a noisy grey image; the heatmap's peak must fall in the quadrant that
holds the pattern. With two different patterns in one image, each class's heatmap must
find its own pattern: a map of where the network is merely active cannot pass that.
"""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from resnetkit.cli import main
from resnetkit.data.pipeline import normalize
from resnetkit.data.sources import save_class_map
from resnetkit.data.transforms import resize_center_crop
from resnetkit.explain import explain, explanation_grid, overlay
from resnetkit.explain.render import output_names
from resnetkit.models import create_model
from resnetkit.preprocessing import Preprocessing
from resnetkit.tasks.classify.predictor import Classifier, load_classifier

SIZE, HALF, PATTERN = 16, 8, 5  # image side, quadrant side, pattern side
CLASSES = ["plus", "ring", "cross"]
PREP = Preprocessing(mean=(0.35,) * 3, std=(0.1,) * 3, crop_size=SIZE, resize_size=SIZE)


def _patterns() -> list[np.ndarray]:
    plus = np.zeros((PATTERN, PATTERN), bool)
    plus[PATTERN // 2, :] = plus[:, PATTERN // 2] = True
    ring = np.ones((PATTERN, PATTERN), bool)
    ring[1:-1, 1:-1] = False
    cross = np.eye(PATTERN, dtype=bool) | np.eye(PATTERN, dtype=bool)[::-1]
    return [plus, ring, cross]


PATTERNS = _patterns()


def scenes(n: int, seed: int, objects: int = 1):
    """``n`` noisy grey images, each with ``objects`` patterns of different classes in
    different quadrants (placed at random inside them) → (images, classes, quadrants),
    the last two of shape (n, objects)."""
    rng = np.random.default_rng(seed)
    images = np.clip(rng.normal(90, 25, (n, SIZE, SIZE, 1)), 0, 255)
    classes = np.stack([rng.permutation(len(CLASSES))[:objects] for _ in range(n)])
    quadrants = np.stack([rng.permutation(4)[:objects] for _ in range(n)])
    for i in range(n):
        for c, q in zip(classes[i], quadrants[i], strict=True):
            top = (q // 2) * HALF + rng.integers(1, HALF - PATTERN)
            left = (q % 2) * HALF + rng.integers(1, HALF - PATTERN)
            images[i, top : top + PATTERN, left : left + PATTERN, 0][PATTERNS[c]] = 230
    return images.astype(np.uint8), classes, quadrants


def peak_quadrant(heatmap: np.ndarray) -> int:
    row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    return int(row * 2 // heatmap.shape[0] * 2 + col * 2 // heatmap.shape[1])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory (model.keras + class_map.json) of resnet_tiny trained to name the
    pattern, wherever it is. Seeded; the task is easy enough that it ends at 100%."""
    keras.utils.set_random_seed(0)
    model = create_model(
        "resnet_tiny",
        num_classes=len(CLASSES),
        input_shape=(SIZE, SIZE, 1),
        classifier_activation="softmax",
        preprocessing=PREP.to_dict(),
    )
    images, classes, _ = scenes(480, seed=1)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    x = normalize(images, PREP)  # = classifier.prepare(images): they have the crop size
    model.fit(x, classes[:, 0], batch_size=32, epochs=4, verbose=0)
    out = tmp_path_factory.mktemp("run")
    model.save(out / "model.keras")
    save_class_map(out / "class_map.json", CLASSES)
    return out


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_heatmap_peak_lands_on_the_evidence(run_dir, method):
    classifier = load_classifier(run_dir)
    images, classes, quadrants = scenes(64, seed=2)
    explanations = explain(classifier, list(images), method=method)
    predicted = np.array([e.class_index for e in explanations])
    assert np.mean(predicted == classes[:, 0]) >= 0.95, "the model did not learn the task"
    hits = np.mean(
        [peak_quadrant(e.heatmap) == q for e, q in zip(explanations, quadrants[:, 0], strict=True)]
    )
    assert hits >= 0.9, f"{method}: peak in the pattern's quadrant for only {hits:.0%}"


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_each_class_heatmap_finds_its_own_pattern(run_dir, method):
    classifier = load_classifier(run_dir)
    images, classes, quadrants = scenes(64, seed=3, objects=2)
    for k in range(2):
        explanations = explain(classifier, images, class_index=classes[:, k], method=method)
        assert [e.class_index for e in explanations] == classes[:, k].tolist()
        hits = np.mean(
            [
                peak_quadrant(e.heatmap) == q
                for e, q in zip(explanations, quadrants[:, k], strict=True)
            ]
        )
        assert hits >= 0.9, f"{method}, object {k}: right quadrant for only {hits:.0%}"


def _linear_head_classifier(head: str) -> Classifier:
    """conv → ReLU → global average → Dense: Grad-CAM of the last conv is then CAM, exactly."""
    inputs = keras.Input((6, 6, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    activation = "softmax" if head == "dense_softmax" else None
    outputs = keras.layers.Dense(3, activation=activation, name="fc")(pooled)
    if head == "softmax_layer":
        outputs = keras.layers.Softmax()(outputs)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    prep = Preprocessing(mode="tf", crop_size=6, resize_size=6)
    return Classifier(model, ["a", "b", "c"], prep, path=None)


@pytest.mark.parametrize("head", ["dense_softmax", "dense_logits", "softmax_layer"])
def test_arithmetic_is_the_published_one(head):
    """Grad-CAM weights each channel k by the mean gradient of the class *logit*; for a
    pooled linear head that is W[k, c] / (h·w), so the map is relu(A·W[:, c]) (CAM).
    Grad-CAM++: alpha = g² / (2g² + g³·ΣA), weight = Σ alpha·relu(g). A softmax head,
    a logits head and a separate softmax layer give the same maps."""
    classifier = _linear_head_classifier(head)
    model = classifier.model
    images = np.random.default_rng(1).integers(0, 256, (5, 6, 6, 3), dtype=np.uint8)
    x = classifier.prepare(images)
    features = keras.Model(model.input, model.get_layer("features").output)(x).numpy()
    kernel = model.get_layer("fc").kernel.numpy()
    logits = features.mean(axis=(1, 2)) @ kernel + model.get_layer("fc").bias.numpy()
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    targets = [0, 1, 2, 2, 1]
    for method in ("gradcam", "gradcam++"):
        got = explain(classifier, images, layer="features", class_index=targets, method=method)
        for i, (e, c) in enumerate(zip(got, targets, strict=True)):
            g = kernel[:, c] / 36.0  # the gradient, the same at every position
            if method == "gradcam":
                weights = g
            else:
                alpha = g**2 / (2 * g**2 + g**3 * features[i].sum(axis=(0, 1)))
                weights = 36.0 * alpha * np.maximum(g, 0)
            cam = np.maximum(features[i] @ weights, 0)
            np.testing.assert_allclose(e.heatmap, cam / cam.max(), atol=1e-5)
            assert e.class_index == c and e.predicted_index == probs[i].argmax()
            assert e.probability == pytest.approx(probs[i, c], abs=1e-6)


def test_heatmap_shape_range_and_image(run_dir):
    classifier = load_classifier(run_dir)
    rng = np.random.default_rng(4)
    images = [
        rng.integers(0, 256, (20, 27, 1), dtype=np.uint8),  # resized, then cropped
        rng.integers(0, 256, (23, 16, 1), dtype=np.uint8),  # cropped only
        scenes(1, seed=5)[0][0, ..., 0],  # grey without a channel axis
    ]
    columns = [im.reshape(*im.shape[:2], 1) for im in images]
    for layer in (None, "stem", "stage1"):
        got = explain(classifier, images, layer=layer, method="gradcam++")
        for e, im in zip(got, columns, strict=True):
            assert e.heatmap.shape == (SIZE, SIZE) and e.heatmap.dtype == np.float32
            assert e.heatmap.min() >= 0 and e.heatmap.max() == pytest.approx(1.0)
            expected = resize_center_crop(tf.convert_to_tensor(im), PREP).numpy()
            assert e.image.dtype == np.uint8 and np.array_equal(e.image, expected)
    probs = classifier.predict_arrays(columns)
    got = explain(classifier, images)
    assert [e.probability for e in got] == pytest.approx(probs.max(-1).tolist(), abs=1e-5)


def test_class_index_changes_the_explained_class(run_dir):
    classifier = load_classifier(run_dir)
    images, classes, _ = scenes(4, seed=6)
    predicted = explain(classifier, images)
    other = (classes[:, 0] + 1) % len(CLASSES)  # one that is not in the image
    chosen = explain(classifier, images, class_index=other)
    for p, e, c in zip(predicted, chosen, other, strict=True):
        assert e.class_index == c != p.class_index and e.predicted_index == p.class_index
        assert e.probability < 0.5 < p.probability
        assert not np.allclose(e.heatmap, p.heatmap)
    same = explain(classifier, images, class_index=int(other[0]))
    assert all(e.class_index == other[0] for e in same)
    np.testing.assert_allclose(same[0].heatmap, chosen[0].heatmap, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layer": "stage3"}, "unknown feature map 'stage3'.* Valid: stage1, stage2, stem"),
        ({"layer": "head_fc"}, "4-D"),
        ({"method": "cam"}, r"gradcam, gradcam\+\+; got 'cam'"),
        ({"class_index": 3}, "class_index 3 out of range: the model has 3 classes"),
        ({"class_index": [0]}, "expected 2 class indices"),
    ],
)
def test_bad_options_name_the_value(run_dir, options, message):
    classifier = load_classifier(run_dir)
    images = list(scenes(2, seed=7)[0])
    with pytest.raises(ValueError, match=message):
        explain(classifier, images, **options)


def test_bad_images_and_layer_of_a_model_without_features():
    classifier = _linear_head_classifier("dense_softmax")
    with pytest.raises(ValueError, match="no named feature maps"):
        explain(classifier, np.zeros((1, 6, 6, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(height, width, 3\) uint8 images; got shape"):
        explain(classifier, np.zeros((1, 6, 6, 3), np.float32), layer="features")


def test_overlay_blends_a_colormap_over_the_image():
    grey = np.full((4, 6, 1), 100, np.uint8)
    heat = np.zeros((2, 3), np.float32)
    heat[0, 0] = 1.0
    assert np.array_equal(overlay(grey, heat, alpha=0.0), np.full((4, 6, 3), 100, np.uint8))
    full = overlay(grey, heat, alpha=1.0)
    assert full.shape == (4, 6, 3) and full.dtype == np.uint8
    assert full[0, 0, 0] > 100 > full[0, 0, 2]  # hot: red under "jet"
    assert full[3, 5, 2] > 100 > full[3, 5, 0]  # cold: blue
    big = overlay(grey[..., 0], heat, alpha=0.5, min_size=10)
    assert big.shape == (12, 18, 3)  # enlarged by a whole factor of 3
    with pytest.raises(ValueError, match="alpha must be in"):
        overlay(grey, heat, alpha=1.5)


def test_grid_titles(run_dir):
    classifier = load_classifier(run_dir)
    explanations = explain(classifier, list(scenes(3, seed=8)[0]))
    fig = explanation_grid(explanations, CLASSES, columns=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [f"{CLASSES[e.class_index]} ({e.probability:.2f})" for e in explanations]


def test_output_names_are_unique():
    paths = ["a/x.jpg", "b/x.png", "X.jpg", "grid.jpg", "c/we ird.png", ".hidden.png"]
    assert output_names(paths) == [
        "x.png",
        "x_2.png",
        "X_3.png",
        "grid_2.png",
        "we_ird.png",
        "hidden.png",
    ]


def test_cli_end_to_end(run_dir, tmp_path, capsys):
    images, classes, quadrants = scenes(3, seed=9)
    files = []
    for i, folder in enumerate(["one", "two", "two"]):
        path = tmp_path / "in" / folder / (f"img{i}.png" if i < 2 else "img0.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i, ..., 0]).save(path)
        files.append(path)
    (tmp_path / "in" / "broken.png").write_text("not an image")
    out = tmp_path / "out"
    argv = ["explain", str(run_dir), str(tmp_path / "in"), "--out", str(out)]
    assert main([*argv, "--method", "gradcam++"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'in' / 'broken.png'}: unreadable: ")
    assert "1 of 4 file(s) could not be read" in captured.err
    written = {}
    for i, line in zip((0, 2, 1), lines[1:4], strict=True):  # the order expand_paths sorts
        name = CLASSES[classes[i, 0]]
        assert line.startswith(f"{files[i]}: {name} (p=") and line.endswith(".png")
        written[i] = line.rsplit(" -> ", 1)[1]
    assert sorted(p.name for p in out.iterdir()) == [
        "grid.png",
        "img0.png",
        "img0_2.png",
        "img1.png",
    ]
    assert lines[4] == f"wrote {out / 'grid.png'} (3 images)"
    for i in range(3):  # the overlay is hottest (red) on the pattern
        png = np.asarray(Image.open(written[i]).convert("RGB"), np.float32)
        assert png.shape == (224, 224, 3)
        assert peak_quadrant(png[..., 0] - png[..., 2]) == quadrants[i, 0]

    assert main([*argv, "--class", "ring", "--layer", "stage1"]) == 0
    explained = [line for line in capsys.readouterr().out.splitlines() if "(p=" in line]
    assert len(explained) == 3 and all(": ring (p=" in line for line in explained)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--class", "rin"], "unknown class 'rin'. Did you mean 'ring'? Valid: cross, plus, ring"),
        (["--layer", "stage9"], "unknown feature map 'stage9'"),
        (["--alpha", "2"], "alpha must be in [0, 1]; got 2.0"),
    ],
)
def test_cli_errors_exit_2(run_dir, tmp_path, capsys, extra, message):
    image = tmp_path / "a.png"
    Image.fromarray(scenes(1, seed=10)[0][0, ..., 0]).save(image)
    argv = ["explain", str(run_dir), str(image), "--out", str(tmp_path / "out"), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_nothing_readable_exits_1(run_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    assert main(["explain", str(run_dir), str(bad), "--out", str(tmp_path / "out")]) == 1
    assert f"{bad}: unreadable: " in capsys.readouterr().out
    assert not (tmp_path / "out" / "grid.png").exists()


def test_explain_help_does_not_load_tensorflow():
    code = (
        "import sys\nfrom resnetkit.cli import main\n"
        "try:\n    main(['explain', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--class NAME" in out.stdout and out.stdout.split()[-1] == "False"
