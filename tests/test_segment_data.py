"""Segmentation data: VOC, image + mask and COCO layouts indexed from generated files, and
every kind of bad pair reported by file with its reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from resnetkit.data.masks import IGNORE, VOC_CLASSES, from_mask_folder, looks_like_masks


def _scene(seed: int, size=(24, 32), label: int = 1):
    """An image with a bright square and its mask (1-pixel ignore border around it)."""
    h, w = size
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    top, left = rng.integers(2, h // 2), rng.integers(2, w // 2)
    mask[top - 1 : top + 9, left - 1 : left + 9] = IGNORE
    mask[top : top + 8, left : left + 8] = label
    image[mask == label] = 220
    return image, mask


def _palette_png(mask: np.ndarray, path) -> None:
    png = Image.fromarray(mask, mode="P")
    png.putpalette([v for i in range(256) for v in (i * 40 % 256, i * 90 % 256, i * 10 % 256)])
    png.save(path)


def _voc(root, train=("a", "b", "c"), val=("d",)):
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, stem in enumerate((*train, *val)):
        image, mask = _scene(i, label=1 + i % 3)
        Image.fromarray(image).save(root / "JPEGImages" / f"{stem}.jpg")
        _palette_png(mask, root / "SegmentationClass" / f"{stem}.png")
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(train) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(val) + "\n")
    return root


def test_a_voc_folder_gives_its_splits_classes_and_pixels(tmp_path):
    root = _voc(tmp_path / "voc")
    assert looks_like_masks(root) == "voc"
    source = from_mask_folder(root)
    assert source.class_names == list(VOC_CLASSES) and source.layout == "voc"
    assert {k: len(v) for k, v in source.splits.items()} == {"train": 3, "val": 1}
    assert source.bad == []
    train = source.pixels["train"]
    assert train[1] == train[2] == train[3] == 64 and train[4] == 0  # one 8×8 object each
    assert sum(train) < 3 * 24 * 32  # the ignore border is counted nowhere


def test_an_image_and_mask_folder_with_classes_txt(tmp_path):
    root = tmp_path / "plain"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(10):
        image, mask = _scene(i, label=1 + i % 2)
        Image.fromarray(image).save(root / "images" / f"{i:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i:02d}.png")
    (root / "classes.txt").write_text("background\ncat\ndog\n")
    source = from_mask_folder(root, val_fraction=0.2, seed=0)
    assert source.class_names == ["background", "cat", "dog"]
    assert len(source.splits["train"]) == 8 and len(source.splits["val"]) == 2
    for image, mask in zip(
        source.splits["train"].images, source.splits["train"].masks, strict=True
    ):
        assert image.split("/")[-1] == mask.split("/")[-1]  # the same stem, in order
    (root / "classes.txt").unlink()
    assert from_mask_folder(root).class_names == ["0", "1", "2"]  # from the largest label


def test_every_bad_pair_is_named_with_its_reason(tmp_path):
    root = tmp_path / "bad"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(6):
        image, mask = _scene(i)
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    (root / "masks" / "1.png").unlink()  # missing mask
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "masks" / "2.png")  # wrong size
    bad_label = _scene(3)[1]
    bad_label[0, 0] = 7
    Image.fromarray(bad_label).save(root / "masks" / "3.png")  # label outside 3 classes
    (root / "images" / "4.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # unreadable
    Image.fromarray(_scene(5)[0]).save(root / "masks" / "5.png")  # an RGB "mask"
    (root / "classes.txt").write_text("background\nsquare\nother\n")
    source = from_mask_folder(root, val_fraction=0)
    reasons = {b.path.split("/")[-1]: b.reason for b in source.bad}
    assert set(reasons) == {"1.png", "2.png", "3.png", "4.png", "5.png"}
    assert "missing mask" in reasons["1.png"]
    assert "is 10×10, its image 32×24" in reasons["2.png"]
    assert "mask label 7 outside 0..2" in reasons["3.png"]
    assert "not a readable image" in reasons["4.png"]
    assert "is RGB, not a class-index image" in reasons["5.png"]
    assert source.splits["train"].images == [str(root / "images" / "0.png")]


def test_no_usable_pair_is_an_error_that_names_the_folder(tmp_path):
    root = tmp_path / "empty"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    with pytest.raises(ValueError, match="no usable training image"):
        from_mask_folder(root)
    with pytest.raises(ValueError, match="not a segmentation folder"):
        from_mask_folder(tmp_path)


def test_coco_polygons_rle_and_crowds_become_class_index_masks(tmp_path, monkeypatch):
    from pycocotools import mask as mask_utils

    monkeypatch.setenv("RESNETKIT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "train2017").mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(root / "train2017" / "one.jpg")
    rle_area = np.zeros((20, 30), np.uint8, order="F")
    rle_area[10:15, 20:28] = 1
    rle = mask_utils.encode(np.asfortranarray(rle_area))
    rle["counts"] = rle["counts"].decode()
    crowd = np.zeros((20, 30), np.uint8, order="F")
    crowd[0:3, 0:3] = 1
    crowd_rle = mask_utils.encode(np.asfortranarray(crowd))
    crowd_rle["counts"] = crowd_rle["counts"].decode()
    data = {
        "images": [{"id": 1, "file_name": "one.jpg", "height": 20, "width": 30}],
        "categories": [{"id": 3, "name": "car"}, {"id": 7, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "iscrowd": 0, "area": 25,
             "bbox": [2, 5, 5, 5], "segmentation": [[2, 5, 7, 5, 7, 10, 2, 10]]},
            {"id": 2, "image_id": 1, "category_id": 3, "iscrowd": 0, "area": 40,
             "bbox": [20, 10, 8, 5], "segmentation": rle},
            {"id": 3, "image_id": 1, "category_id": 3, "iscrowd": 1, "area": 9,
             "bbox": [0, 0, 3, 3], "segmentation": crowd_rle},
        ],
    }  # fmt: skip
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    assert looks_like_masks(root) == "coco"
    source = from_mask_folder(root, val_fraction=0)
    assert source.class_names == ["background", "car", "dog"]
    mask = np.asarray(Image.open(source.splits["train"].masks[0]))
    assert (mask[11:14, 21:27] == 1).all()  # the RLE car
    assert mask[7, 4] == 2  # inside the dog polygon
    assert (mask[0:3, 0:3] == IGNORE).all()  # the crowd is ignored
    assert mask[18, 1] == 0


def test_fashion_mnist_scenes_are_a_voc_folder_with_outlined_items(tmp_path, capsys):
    from resnetkit.cli import main

    out = tmp_path / "scenes"
    argv = ["data", "export", "fashion-mnist-scenes", str(out), "--train", "6", "--val", "3",
            "--size", "48"]  # fmt: skip
    assert main(argv) == 0
    assert "6 training and 3 validation scenes of 48×48, 11 classes" in capsys.readouterr().out
    source = from_mask_folder(out)
    assert source.layout == "voc" and source.bad == []
    assert source.class_names[0] == "background" and len(source.class_names) == 11
    assert {k: len(v) for k, v in source.splits.items()} == {"train": 6, "val": 3}
    for path in source.splits["train"].masks:
        mask = np.asarray(Image.open(path))
        assert mask.shape == (48, 48) and (mask[mask != IGNORE] <= 10).all()
        assert (mask > 0).any() and (mask == 0).any()  # items on a background
    again = tmp_path / "again"
    assert main([*argv[:3], str(again), *argv[4:]]) == 0
    first = (out / "SegmentationClass" / "train00000.png").read_bytes()
    assert first == (again / "SegmentationClass" / "train00000.png").read_bytes()  # seeded
    capsys.readouterr()
    assert main(argv) == 2  # an existing folder is never written into
    assert "is not empty; choose a new folder" in capsys.readouterr().err


def test_an_items_outline_is_ignored_and_its_inside_kept():
    from resnetkit.data.scenes import with_border

    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 3
    out = with_border(mask)
    assert (out[3:5, 3:5] == 3).all() and (out[mask == 0] == 0).all()
    rim = np.zeros((8, 8), bool)
    rim[2:6, 2:6] = True
    rim[3:5, 3:5] = False
    assert (out[rim] == IGNORE).all()


def test_data_inspect_on_a_mask_folder_lists_pixels_empty_images_and_faults(tmp_path, capsys):
    from resnetkit.cli import main

    root = tmp_path / "plain"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(4):
        image, mask = _scene(i)
        if i == 0:
            mask[:] = 0  # nothing but background
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    (root / "masks" / "3.png").unlink()
    (root / "classes.txt").write_text("background\nsquare\n")
    assert main(["data", "inspect", str(root)]) == 0
    out = capsys.readouterr().out
    assert "(masks layout)" in out and "pairs: train 3" in out
    assert "train: 1 image(s) with no foreground" in out and str(root / "images" / "0.png") in out
    assert "bad pairs: 1" in out and "missing mask" in out
    assert "square" in out and "128 (" in out  # two 8×8 squares
    assert main(["data", "inspect", str(root), "--strict"]) == 1
