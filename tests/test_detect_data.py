"""Detection data: COCO JSON, Pascal VOC XML and YOLO txt folders read into one form, and
every bad image or annotation reported with its reason instead of raised."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import save
from PIL import Image

from resnetkit.data.boxes import from_box_folder, looks_like_boxes


def _coco(root, split="train"):
    (root / "annotations").mkdir(parents=True)
    (root / f"{split}2017").mkdir()
    for i in range(4):
        save(root / f"{split}2017" / f"{i}.jpg", size=(40, 30))
    anns = [
        {"id": 1, "image_id": 0, "category_id": 7, "bbox": [2, 3, 10, 8], "iscrowd": 0},
        {"id": 2, "image_id": 0, "category_id": 3, "bbox": [30, 20, 20, 20], "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": [5, 5, 0, 4], "iscrowd": 0},
        {"id": 4, "image_id": 1, "category_id": 99, "bbox": [5, 5, 4, 4], "iscrowd": 0},
        {"id": 5, "image_id": 2, "category_id": 7, "bbox": [0, 0, 40, 30], "iscrowd": 1},
        {"id": 6, "image_id": 3, "category_id": 7, "bbox": [50, 40, 5, 5], "iscrowd": 0},
    ]
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 40, "height": 30} for i in range(4)]
    images.append({"id": 9, "file_name": "missing.jpg", "width": 40, "height": 30})
    cats = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]
    data = {"images": images, "annotations": anns, "categories": cats}
    (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(data))
    return root


def test_coco_boxes_classes_crowd_and_every_fault_by_name(tmp_path):
    root = _coco(tmp_path / "coco")
    assert looks_like_boxes(root) == "coco"
    source = from_box_folder(root, val_fraction=0)
    assert source.class_names == ["cat", "dog"] and source.category_ids == [3, 7]
    train = source.splits["train"]
    assert len(train) == 4  # the missing file is out; the image with no box left is kept
    first = train.images.index(str(root / "train2017" / "0.jpg"))
    # COCO's [x, y, w, h] in pixels; the box crossing the border is clipped to 40×30.
    np.testing.assert_allclose(train.boxes[first], [[2, 3, 12, 11], [30, 20, 40, 30]])
    assert train.classes[first].tolist() == [1, 0] and train.sizes[first] == (30, 40)
    crowd = train.images.index(str(root / "train2017" / "2.jpg"))
    assert train.crowd[crowd].tolist() == [True]
    assert train.class_counts(2) == [1, 1]  # crowd boxes are not counted
    reasons = {b.path: b.reason for b in source.bad}
    assert reasons[str(root / "images" / "missing.jpg")] == "missing image file"
    faults = " | ".join(f"{b.path}: {b.reason}" for b in source.bad)
    assert "annotation 3 (image 1, category 3): box (5, 5, 5, 9) has zero or negative" in faults
    assert "annotation 4 (image 1, category 99): class -1 is not one of the 2" in faults
    assert "annotation 6 (image 3, category 7): box (50, 40, 55, 45) lies outside" in faults


def test_voc_xml_and_its_lists(tmp_path):
    root = tmp_path / "voc"
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / d).mkdir(parents=True)
    objects = {"a": [("dog", 1, 1, 20, 10)], "b": [("cat", 5, 5, 30, 25), ("zebra", 1, 1, 5, 5)]}
    for stem, objs in objects.items():
        save(root / "JPEGImages" / f"{stem}.jpg", size=(40, 30))
        body = "".join(
            f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
            f"<ymax>{d}</ymax></bndbox></object>"
            for n, a, b, c, d in objs
        )
        (root / "Annotations" / f"{stem}.xml").write_text(f"<annotation>{body}</annotation>")
    (root / "Annotations" / "c.xml").write_text("<annotation><object>")  # truncated
    save(root / "JPEGImages" / "c.jpg", size=(40, 30))
    (root / "ImageSets/Main/train.txt").write_text("a\nb\n")
    (root / "ImageSets/Main/val.txt").write_text("c\n")
    source = from_box_folder(root)
    assert source.layout == "voc" and len(source.class_names) == 20
    train = source.splits["train"]
    dog = source.class_names.index("dog")
    np.testing.assert_allclose(train.boxes[0], [[0, 0, 20, 10]])  # 1-based corners
    assert train.classes[0].tolist() == [dog]
    faults = " | ".join(f"{b.path}: {b.reason}" for b in source.bad)
    assert "b.xml: object 1 (zebra): class -1 is not one of the 20 classes" in faults
    assert "c.xml: unreadable annotation (" in faults
    assert len(source.splits["val"]) == 1 and not len(source.splits["val"].boxes[0])


def test_yolo_fractions_names_and_images_without_labels(tmp_path):
    root = tmp_path / "yolo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(3):
        save(root / "images" / f"{i}.png", size=(40, 20))
    (root / "labels" / "0.txt").write_text("1 0.5 0.5 0.5 0.5\n0 0.1 0.1 0.1 0.1\n")
    (root / "labels" / "1.txt").write_text("5 0.5 0.5 0.2 0.2\nnot a box\n")
    (root / "classes.txt").write_text("red\nblue\n")
    source = from_box_folder(root, val_fraction=0)
    assert source.layout == "yolo" and source.class_names == ["red", "blue"]
    train = source.splits["train"]
    np.testing.assert_allclose(train.boxes[0], [[10, 5, 30, 15], [2, 1, 6, 3]], atol=1e-5)
    assert train.classes[0].tolist() == [1, 0] and not len(train.boxes[2])
    faults = sorted(f"{b.path}: {b.reason}" for b in source.bad)
    assert faults[0].endswith("1.txt: line 1: class 5 is not one of the 2 classes")
    assert faults[1].endswith("1.txt: line 2: not 'class cx cy w h': 'not a box'")


def test_a_folder_of_no_known_layout_says_what_it_expected(tmp_path):
    with pytest.raises(ValueError, match="not a detection folder"):
        from_box_folder(tmp_path)


def test_fashion_mnist_box_scenes_are_a_coco_folder(tmp_path, capsys):
    from resnetkit.cli import main

    out = tmp_path / "boxes"
    argv = ["data", "export", "fashion-mnist-boxes", str(out), "--train", "8", "--val", "2"]
    assert main(argv) == 0
    assert "COCO JSON; 8 training and 2 validation scenes of 128×128, 10 classes" in (
        capsys.readouterr().out
    )
    source = from_box_folder(out)
    assert source.layout == "coco" and source.bad == [] and len(source.class_names) == 10
    assert source.category_ids == list(range(1, 11))
    train = source.splits["train"]
    assert len(train) == 8 and all(len(b) for b in train.boxes)
    sides = np.concatenate([b[:, 2:] - b[:, :2] for b in train.boxes]).max(1)
    assert sides.min() < 40 and sides.max() > 50  # small and large objects
    for path, b in zip(train.images, train.boxes, strict=True):  # each box frames its item
        image = np.asarray(Image.open(path)).astype(int)
        x1, y1, x2, y2 = b[0].astype(int)
        assert image[y1:y2, x1:x2].std() > 5
