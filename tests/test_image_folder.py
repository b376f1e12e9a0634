import numpy as np
import pytest
import torch
from PIL import Image

from activation_atlas.data.image_folder import (
    ImageSelection,
    describe_upscaled,
    load_image,
    read_batch,
    scan_image_folder,
    select_images,
    subsample,
)


def make_folder(root, counts, size=(20, 12)):
    for c, n in enumerate(counts):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", size, (c * 40, i, 0)).save(root / f"class{c}" / f"{i:03d}.png")
    return root


def test_flat_folder_is_unlabelled(tmp_path):
    for i in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{i}.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    folder = scan_image_folder(tmp_path, "flat")
    assert len(folder) == 3 and folder.classes == () and folder.labels.tolist() == [-1, -1, -1]


def test_class_folder_layout_without_classes_says_what_to_do(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match="no class sub-folders .*layout: flat"):
        scan_image_folder(tmp_path)


def test_stratified_subsample_keeps_class_shares_and_is_seeded(tmp_path):
    folder = scan_image_folder(make_folder(tmp_path, [60, 30, 10]))
    a = subsample(folder, 50, seed=3, stratified=True)
    assert np.bincount(a.labels).tolist() == [30, 15, 5]
    assert a.files == subsample(folder, 50, seed=3, stratified=True).files
    assert a.files != subsample(folder, 50, seed=4, stratified=True).files
    assert list(a.files) == sorted(a.files)  # folder order is kept
    assert subsample(folder, 500, seed=3, stratified=True) is folder


def test_stratified_subsample_hands_out_the_remainder(tmp_path):
    folder = scan_image_folder(make_folder(tmp_path, [5, 5, 5]))
    assert np.bincount(subsample(folder, 7, seed=0, stratified=True).labels).sum() == 7


def test_resize_crop_keeps_the_centre(tmp_path):
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    image[:, 10:30] = 255  # a white centre square
    Image.fromarray(image).save(tmp_path / "wide.png")
    cropped = load_image(tmp_path / "wide.png", 10, "resize_crop")
    assert cropped.shape == (10, 10, 3) and cropped.min() > 200
    stretched = load_image(tmp_path / "wide.png", 10, "resize")
    assert stretched[:, 0].max() < 60


def test_corrupt_images_are_skipped_or_fail_by_choice(tmp_path):
    folder_root = make_folder(tmp_path, [3])
    (folder_root / "class0" / "001.png").write_bytes(b"\x89PNG broken")
    folder = scan_image_folder(folder_root)
    messages = []
    images, kept, skipped, _ = read_batch(folder, [0, 1, 2], 8, "resize", "skip", messages.append)
    assert images.shape == (2, 3, 8, 8) and kept.tolist() == [0, 2]
    assert skipped == [folder.files[1]] and "001.png" in messages[0]
    with pytest.raises(ValueError, match="unreadable image .*001.png"):
        read_batch(folder, [0, 1, 2], 8, "resize", "fail", messages.append)


def test_an_empty_class_folder_stays_a_class_and_is_warned_of(tmp_path):
    root = make_folder(tmp_path / "images", [2, 0, 3])
    folder = scan_image_folder(root)
    assert folder.classes == ("class0", "class1", "class2") and folder.empty_classes == ("class1",)
    assert folder.labels.tolist() == [0, 0, 2, 2, 2]  # class2 keeps its index
    messages = []
    chosen = select_images(ImageSelection(str(root), "class_folders", 3, True), 0, messages.append)
    assert chosen.empty_classes == ("class1",)
    assert [m for m in messages if m.startswith("warning: 1 class folder(s)") and "class1" in m]
    messages.clear()
    select_images(
        ImageSelection(str(make_folder(tmp_path / "full", [2, 2])), "class_folders", None, False), 0, messages.append
    )
    assert not [m for m in messages if "warning" in m]


def test_images_scaled_up_to_the_input_are_listed_with_their_size(tmp_path):
    root = make_folder(tmp_path, [2], size=(20, 12))
    Image.new("RGB", (1, 1)).save(root / "class0" / "tiny.png")
    Image.new("RGB", (40, 40)).save(root / "class0" / "large.png")
    folder = scan_image_folder(root)  # 000.png, 001.png, large.png, tiny.png
    read = read_batch(folder, [0, 1, 2, 3], 16, "resize_crop", "fail", lambda _: None)
    assert read.images.shape == (4, 3, 16, 16)
    assert read.upscaled == [(folder.files[0], (20, 12)), (folder.files[1], (20, 12)), (folder.files[3], (1, 1))]
    line = describe_upscaled(read.upscaled, 16)
    assert line.startswith("warning: 3 image(s) smaller than 16 px") and f"{folder.files[3]}, 1×1 px" in line
    assert read_batch(folder, [2], 16, "resize", "fail", lambda _: None).upscaled == []


def test_torchvision_weights_come_from_torch_home(tmp_path, monkeypatch):
    """torchvision's own mechanism: a weights file already in $TORCH_HOME/hub/checkpoints is used as is
    when its bytes have the hash its name publishes. Nothing can be fetched here, so the stand-in is
    published under its own hash: the weights' URL names it."""
    import hashlib

    import torchvision

    from activation_atlas.models.labels import builtin_labels
    from activation_atlas.models.loading import build_model

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    torch.manual_seed(5)
    stand_in = torchvision.models.resnet18(weights=None).state_dict()
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(stand_in, checkpoints / "stand-in.pth")
    digest = hashlib.sha256((checkpoints / "stand-in.pth").read_bytes()).hexdigest()
    (checkpoints / "stand-in.pth").rename(checkpoints / f"resnet18-{digest[:8]}.pth")
    monkeypatch.setattr(weights.value, "url", f"https://download.pytorch.org/models/resnet18-{digest[:8]}.pth")
    cfg = {"kind": "torchvision", "architecture": "resnet18", "weights": "IMAGENET1K_V1"}
    model = build_model(cfg)
    torch.testing.assert_close(model.state_dict()["fc.weight"], stand_in["fc.weight"])
    assert builtin_labels(cfg)[:2] == ["tench", "goldfish"]
