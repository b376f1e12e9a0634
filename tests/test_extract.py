import copy
import json

import h5py
import numpy as np
import pytest
import torch

from activation_atlas.algorithms.extract import ExtractSettings, ImageBatches, draw_positions, extract_activations
from activation_atlas.data.image_folder import BatchRead, load_batch, scan_image_folder
from activation_atlas.formats.activations import merge_shards
from activation_atlas.models.capture import forward_to_layers, layer_names, resolve_layers
from activation_atlas.workflow.jobs import shard_images

LAYERS = ["conv1", "conv2", "conv3"]


def run_extract(
    model, folder, out_dir, batch_size, k=2, edge=1, seed=11, images=None, attribution=False, autocast=None
):
    modules = resolve_layers(model, LAYERS, layer_names(model))
    paths = {layer: out_dir / f"{layer}.h5" for layer in LAYERS}
    images = range(len(folder)) if images is None else images
    batches = ImageBatches(
        lambda idx: BatchRead(load_batch(folder, idx, 32), idx, [], []), folder.labels, batch_size, 32, images
    )
    extract_activations(
        model,
        modules,
        batches,
        len(images),
        paths,
        ExtractSettings(
            seed=seed, positions_per_image=k, exclude_edge=edge, attribution=attribution, autocast=autocast
        ),
        provenance={"seed": seed, "model": "tiny", "classes": list(folder.classes)},
        log=lambda _: None,
    )
    return paths


def test_activation_file_layout_and_values(tiny_model, tiny_dataset, tmp_path):
    folder = scan_image_folder(tiny_dataset / "held_out")
    paths = run_extract(tiny_model, folder, tmp_path, batch_size=16)
    n = len(folder)
    images = load_batch(folder, np.arange(n), 32)
    with torch.no_grad():
        logits = tiny_model(images)
        outputs = forward_to_layers(tiny_model, resolve_layers(tiny_model, LAYERS, LAYERS), images)
    for layer, channels, size in [("conv1", 8, 16), ("conv2", 16, 8), ("conv3", 16, 4)]:
        with h5py.File(paths[layer], "r") as f:
            assert f.attrs["layer"] == layer and f.attrs["stage"] == "activations"
            assert json.loads(f.attrs["classes"]) == list(folder.classes)
            assert list(f.attrs["spatial_size"]) == [size, size]
            assert f["activations"].shape == (2 * n, channels) and f["activations"].dtype == np.float32
            assert f["activations"].attrs["unit"] == "activation"
            acts, index, position = f["activations"][:], f["image_index"][:], f["position"][:]
            assert index.tolist() == np.repeat(np.arange(n), 2).tolist()
            assert f["label"][:].tolist() == np.repeat(folder.labels, 2).tolist()
            assert position.min() >= 1 and position.max() <= size - 2  # edge excluded
            np.testing.assert_allclose(f["logits"][:], np.repeat(logits.numpy(), 2, axis=0), atol=1e-4)
        # Each stored vector is the layer's activation at the stored position of that image.
        expected = outputs[layer][index, :, position[:, 0], position[:, 1]].numpy()
        np.testing.assert_allclose(acts, expected, atol=1e-5)


def test_positions_do_not_depend_on_batch_size(tiny_model, tiny_dataset, tmp_path):
    folder = scan_image_folder(tiny_dataset / "held_out")
    a = run_extract(tiny_model, folder, tmp_path / "a", batch_size=7)
    b = run_extract(tiny_model, folder, tmp_path / "b", batch_size=50)
    for layer in LAYERS:
        with h5py.File(a[layer], "r") as fa, h5py.File(b[layer], "r") as fb:
            assert np.array_equal(fa["position"][:], fb["position"][:])
            np.testing.assert_allclose(fa["activations"][:], fb["activations"][:], atol=1e-5)


def extract_in_shards(model, folder, out_dir, shards, batch_size=8):
    """Extraction as the workflow does it: each shard on its own, then a merge per layer."""
    shard_paths = [
        run_extract(
            model,
            folder,
            out_dir / f"shard{k}",
            batch_size,
            attribution=True,
            images=shard_images(len(folder), batch_size, k, shards),
        )
        for k in range(shards)
    ]
    merged = {layer: out_dir / f"{layer}.h5" for layer in LAYERS}
    for layer in LAYERS:
        merge_shards([paths[layer] for paths in shard_paths], merged[layer], block_rows=5)
    return merged


def test_activation_files_are_identical_for_any_number_of_shards(tiny_model, tiny_dataset, tmp_path):
    folder = scan_image_folder(tiny_dataset / "held_out")  # 50 images: 7 batches of 8
    one = extract_in_shards(tiny_model, folder, tmp_path / "k1", shards=1)
    three = extract_in_shards(tiny_model, folder, tmp_path / "k3", shards=3)
    for layer in LAYERS:
        assert one[layer].read_bytes() == three[layer].read_bytes()
        with h5py.File(three[layer], "r") as f:
            assert f["image_index"][:].tolist() == np.repeat(np.arange(len(folder)), 2).tolist()
            assert f.attrs["images"] == len(folder) and "attribution" in f


def test_shards_are_runs_of_whole_batches_covering_the_dataset():
    ranges = [shard_images(50, 8, k, 3) for k in range(3)]
    assert [(r.start, r.stop) for r in ranges] == [(0, 16), (16, 32), (32, 50)]
    with pytest.raises(ValueError, match="at most 7 shards"):
        shard_images(50, 8, 0, 8)


def test_mixed_precision_extraction_stores_float32_close_to_full_precision(tiny_model, tiny_dataset, tmp_path):
    folder = scan_image_folder(tiny_dataset / "held_out")
    full = run_extract(tiny_model, folder, tmp_path / "fp32", batch_size=16)
    mixed = run_extract(tiny_model, folder, tmp_path / "bf16", batch_size=16, autocast="bfloat16")
    for layer in LAYERS:
        with h5py.File(full[layer], "r") as a, h5py.File(mixed[layer], "r") as b:
            assert b["activations"].dtype == np.float32
            x, y = a["activations"][:], b["activations"][:]
            assert not np.array_equal(x, y)  # bfloat16 really was used
            cosine = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1) + 1e-12)
            assert np.median(cosine) > 0.99


def test_positions_are_seeded_per_image_and_layer():
    a = draw_positions(1, "conv2", 5, 4, 8, 8, 1)
    assert np.array_equal(a, draw_positions(1, "conv2", 5, 4, 8, 8, 1))
    assert not np.array_equal(a, draw_positions(1, "conv2", 6, 4, 8, 8, 1))
    assert not np.array_equal(a, draw_positions(2, "conv2", 5, 4, 8, 8, 1))
    assert a.min() >= 1 and a.max() <= 6


def test_shared_positions_read_the_same_place_on_grids_of_any_size():
    """Shared draws leave the layer out and scale one fraction of the free span to each grid: on a grid
    twice as fine, a position falls in one of the two cells under the coarse grid's cell."""
    images = np.arange(500)
    coarse = draw_positions(3, "conv4", images, 2, 6, 6, 1, shared=True)
    assert np.array_equal(coarse, draw_positions(3, "encoder.layers.encoder_layer_3", images, 2, 6, 6, 1, shared=True))
    fine = draw_positions(3, "blocks.3", images, 2, 10, 10, 1, shared=True)  # free span 8 = 2 × 4
    assert np.array_equal((fine - 1) // 2, coarse - 1)
    assert coarse.min() == 1 and coarse.max() == 4 and fine.min() == 1 and fine.max() == 8
    assert not np.array_equal(coarse, draw_positions(3, "conv4", images, 2, 6, 6, 1))  # not the per-layer draws
    # Every cell of the free span is drawn about equally often.
    counts = np.bincount((fine[:, 0] - 1) * 8 + fine[:, 1] - 1, minlength=64)
    assert counts.min() > 0 and counts.max() < 3 * counts.mean()


def test_edge_exclusion_that_leaves_nothing_is_an_error():
    with pytest.raises(ValueError, match="exclude_edge=2 leaves no position .* use at most 1"):
        draw_positions(0, "conv3", 0, 1, 4, 4, 2)


def test_unknown_layer_lists_the_valid_ones(tiny_model):
    with pytest.raises(ValueError, match="unknown layer 'conv9'; valid layers: conv1, conv2, conv3, conv4"):
        resolve_layers(tiny_model, ["conv9"], layer_names(tiny_model))


def test_failed_extraction_leaves_no_files(tiny_model, tiny_dataset, tmp_path):
    folder = scan_image_folder(tiny_dataset / "held_out")
    modules = resolve_layers(tiny_model, LAYERS, layer_names(tiny_model))
    paths = {layer: tmp_path / f"{layer}.h5" for layer in LAYERS}

    def failing_batches():
        yield next(
            iter(ImageBatches(lambda idx: BatchRead(load_batch(folder, idx, 32), idx, [], []), folder.labels, 8, 32))
        )
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        extract_activations(
            tiny_model,
            modules,
            failing_batches(),
            len(folder),
            paths,
            ExtractSettings(seed=0, positions_per_image=1, exclude_edge=1),
            provenance={},
            log=lambda _: None,
        )
    assert list(tmp_path.iterdir()) == []


def logit_change_when_scaling(model, layer, position, image, scale):
    """Logits of one image with the layer's activation at `position` multiplied by `scale`."""
    module = dict(model.named_modules())[layer]

    def hook(_module, _inputs, output):
        output = output.clone()
        output[:, :, position[0], position[1]] *= scale
        return output

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            return model(image)[0]
    finally:
        handle.remove()


@pytest.mark.parametrize("top_k", [None, 3])
def test_attribution_matches_a_finite_difference(tiny_model, tiny_dataset, tmp_path, top_k):
    folder = scan_image_folder(tiny_dataset / "held_out")
    modules = resolve_layers(tiny_model, ["conv2", "conv3"], layer_names(tiny_model))
    paths = {layer: tmp_path / f"{layer}.h5" for layer in modules}
    batches = ImageBatches(lambda idx: BatchRead(load_batch(folder, idx, 32), idx, [], []), folder.labels, 16, 32)
    extract_activations(
        tiny_model,
        modules,
        batches,
        len(folder),
        paths,
        ExtractSettings(seed=2, positions_per_image=1, exclude_edge=1, attribution=True, attribution_top_k=top_k),
        provenance={},
        log=lambda _: None,
    )
    # The finite difference in float64, so that float32 rounding of the logits does not swamp it.
    images = load_batch(folder, np.arange(len(folder)), 32).double()
    model64 = copy.deepcopy(tiny_model).double()
    eps = 1e-4
    for layer in modules:
        with h5py.File(paths[layer], "r") as f:
            attribution, position, logits = f["attribution"][:], f["position"][:], f["logits"][:]
            classes = f["attribution_class"][:] if top_k else np.tile(np.arange(10), (len(position), 1))
            assert attribution.shape == (len(folder), top_k or 10)
            assert f.attrs["attribution"] == ("all classes" if top_k is None else "top 3 classes by logit")
        if top_k:
            np.testing.assert_array_equal(classes, np.argsort(-logits, axis=1)[:, :top_k])
        for row in (0, 7, 31):
            up = logit_change_when_scaling(model64, layer, position[row], images[row : row + 1], 1 + eps)
            down = logit_change_when_scaling(model64, layer, position[row], images[row : row + 1], 1 - eps)
            # Scaling h by (1 ± ε) changes logit c by ± ε · h·∂logit_c/∂h, to first order.
            expected = ((up - down) / (2 * eps)).numpy()[classes[row]]
            np.testing.assert_allclose(attribution[row], expected, rtol=2e-2, atol=2e-3)


def activation_file_with_logits(path, classes, labels, logits, positions=2):
    """A minimal activation file: `positions` rows per image with the image's label and logits."""
    from activation_atlas.h5io import create_h5, write_dataset

    rows = np.repeat(np.arange(len(labels)), positions)
    with create_h5(path, "activations", layer="conv1", classes=classes) as f:
        write_dataset(f, "activations", np.zeros((len(rows), 2), np.float32), "activation", "row, channel")
        write_dataset(f, "image_index", rows, "index", "row")
        write_dataset(f, "label", np.asarray(labels)[rows], "class index", "row")
        write_dataset(f, "logits", np.asarray(logits, np.float32)[rows], "logit", "row, class")


def card_with_classes(path, classes):
    from activation_atlas.formats.model_card import write_card

    write_card(path, {"model": "m", "kind": "user", "classes": classes, "layers": ["conv1"], "held_out_accuracy": None})


def test_the_run_card_measures_accuracy_by_class_name_and_warns_near_chance(tmp_path):
    from activation_atlas.stages.extract import evaluate_model

    # The dataset's folders are the model's classes in another order: matched by name.
    card_with_classes(tmp_path / "card.json", ["cat", "dog", "ship", "truck"])
    logits = np.eye(4)[[1, 0, 3, 2, 2, 0]]  # predicts dog, cat, truck, ship, ship, cat
    activation_file_with_logits(tmp_path / "good.h5", ["dog", "cat", "truck", "ship"], [0, 1, 2, 3, 3, 0], logits)
    logged = []
    evaluate_model(tmp_path / "good.h5", tmp_path / "card.json", tmp_path / "run.json", logged.append)
    run = json.loads((tmp_path / "run.json").read_text())
    assert (run["extracted_accuracy"], run["extracted_images"], run["chance_accuracy"]) == (round(5 / 6, 6), 6, 0.25)
    assert not any("WARNING" in line for line in logged)
    # Labels shifted by one class, as a wrong input pipeline scrambles predictions: near chance, warned.
    activation_file_with_logits(tmp_path / "bad.h5", ["dog", "cat", "truck", "ship"], [1, 2, 3, 0, 0, 1], logits)
    evaluate_model(tmp_path / "bad.h5", tmp_path / "card.json", tmp_path / "run_bad.json", logged.append)
    assert json.loads((tmp_path / "run_bad.json").read_text())["extracted_accuracy"] == round(1 / 6, 6)
    assert "WARNING: the model classifies the extracted images at near-chance accuracy" in logged[-1]
    assert "check model.normalize / input_size / resize" in logged[-1]


def test_the_run_card_leaves_accuracy_unmeasured_when_the_classes_do_not_name_the_logits(tmp_path):
    from activation_atlas.stages.extract import evaluate_model

    card_with_classes(tmp_path / "card.json", ["class_0", "class_1", "class_2"])
    activation_file_with_logits(tmp_path / "a.h5", ["n01440764", "n02102040"], [0, 1], np.eye(3)[[0, 1]])
    logged = []
    evaluate_model(tmp_path / "a.h5", tmp_path / "card.json", tmp_path / "run.json", logged.append)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["extracted_accuracy"] is None and run["chance_accuracy"] is None and run["extracted_images"] == 2
    assert "accuracy not measured: the dataset's classes (n01440764, n02102040) do not all name" in logged[0]


def test_many_classes_attribute_each_images_top_logits_after_the_named_classes(tmp_path):
    from activation_atlas.algorithms.attribution import attribute_positions
    from activation_atlas.models.grids import MAPS
    from activation_atlas.stages.extract import DEFAULT_TOP_K, attributed_classes

    names = [f"c{k}" for k in range(1000)]
    said = []
    ex = {"attribution": True, "attribution_top_k": None}
    assert attributed_classes(ex, names, ["c7", 3, "c7"], said.append) == (DEFAULT_TOP_K, (7, 3))
    assert said == [
        "attribution to each image's 5 highest logits after the 2 classes the class atlases name: 7 "
        "backward passes a batch (1000 logits and no extract.attribution_top_k: attributing every class "
        "would take 1000 backward passes a batch; set attribution_top_k to choose)"
    ]
    assert attributed_classes(ex, names[:10], ["c7"], said.append) == (None, ())
    assert attributed_classes({**ex, "attribution_top_k": 2}, names, [], said.append) == (2, ())
    # The named classes lead every row, then each image's highest other logits, none twice.
    logits = torch.tensor([[0.0, 5.0, 4.0, 3.0, 9.0], [8.0, 0.0, 1.0, 7.0, 2.0]], requires_grad=True)
    output = logits[:, :, None, None] * 1.0
    _, classes = attribute_positions(
        output.sum(dim=(2, 3)),
        {"x": output},
        {"x": MAPS},
        {"x": np.zeros((2, 2), dtype=np.int64)},
        1,
        top_k=2,
        always=(4, 0),
    )
    assert classes.tolist() == [[4, 0, 1, 2], [4, 0, 3, 2]]


def test_imagenet_folders_named_by_wordnet_id_answer_to_the_logits_of_imagenet1k_labels():
    from activation_atlas.algorithms.class_atlas import resolve_class
    from activation_atlas.formats.model_card import dataset_to_logits
    from activation_atlas.models.labels import configured_labels

    names = configured_labels("imagenet1k")
    assert len(names) == 1000 and names[:2] == ["tench", "goldfish"] and names[999] == "toilet tissue"
    assert dataset_to_logits(["n01440764", "n15075141", "goldfish"], names).tolist() == [0, 999, 1]
    assert resolve_class("n01443537", names) == 1 and resolve_class("goldfish", names) == 1
    assert dataset_to_logits(["n01440764"], [f"class_{k}" for k in range(1000)]) is None


def test_inceptionv1s_shipped_names_answer_to_the_wordnet_ids_of_imagenets_folders():
    """The paper's network names its logits as Google published them ("kit fox", "dummy"); ImageNet's
    folders are WordNet ids. Every id maps to a logit whose name is one of that synset's lemmas in
    timm's ImageNet tables (not made here), and the ids are ImageNet-1k's 1,000."""
    import timm.data

    from activation_atlas.algorithms.class_atlas import resolve_class
    from activation_atlas.formats.model_card import dataset_to_logits
    from activation_atlas.models.kinds.inceptionv1 import shipped_labels
    from activation_atlas.models.labels import imagenet1k_classes, wordnet_logits

    names = shipped_labels({})
    ids = wordnet_logits(names)
    assert set(ids) == set(imagenet1k_classes()[0]) and len(set(ids.values())) == 1000
    info = timm.data.ImageNetInfo()
    for wnid, logit in ids.items():
        synset_lemmas = [lemma.strip() for lemma in info.label_name_to_description(wnid).split(",")]
        assert names[logit].split(" [")[0] in synset_lemmas, (wnid, logit, names[logit])
    # The paper's three pairs, from their folders; the two cranes are the bird and the machine.
    pairs = ["n04251144", "n10565667", "n02066245", "n01484850", "n03400231", "n04596742"]
    assert dataset_to_logits(pairs, names).tolist() == [507, 982, 6, 442, 671, 672]
    assert names[ids["n02012849"]] == names[ids["n03126707"]] == "crane" and ids["n02012849"] < ids["n03126707"]
    assert resolve_class("n04596742", names) == resolve_class("wok", names) == 672
    assert dataset_to_logits(["n04251144"], names[:1000]) is None  # another list: names only


@pytest.mark.workflow
def test_a_thousand_class_model_says_what_attribution_covers_and_costs_in_its_first_log_lines(tmp_path):
    import yaml

    from tools.runs import REPO, copy_workflow, snakemake

    workdir = copy_workflow(tmp_path / "w")
    config = yaml.safe_load((REPO / "config" / "cifar10-resnet32.yaml").read_text())
    config.update(
        run="thousand",
        layers=["layer3"],
        grid={"sizes": [3], "min_count": 2},
        render={**config["render"], "steps": 4, "attempts": 1},
        class_atlas={**config["class_atlas"], "classes": ["class_3"], "comparisons": []},
        attacks={"enabled": False},
    )
    config["model"].update(
        name="resnet8-1000",
        factory="cifar_resnet:resnet",
        kwargs={"depth": 8, "num_classes": 1000},
        url=None,
        sha256=None,
    )
    config["dataset"]["path"] = str(REPO / "tests/data/cifar10-resnet32/images")
    (workdir / "run.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--configfile", "run.yaml", "--cores", "2", "results/thousand/activations/layer3.h5")
    assert result.returncode == 0, result.stderr[-3000:]
    log = (workdir / "logs/thousand/extract/shard0.log").read_text().splitlines()
    said = next(
        i
        for i, line in enumerate(log)
        if "attribution to each image's 5 highest logits after the 1 class "
        "the class atlases name: 6 backward passes a batch (1000 logits" in line
    )
    cost = next(i for i, line in enumerate(log) if "first batch: forward pass" in line)
    assert said < cost < 6 and "attribution to 6 classes" in log[cost]
    with h5py.File(workdir / "results/thousand/activations/layer3.h5", "r") as f:
        classes = f["attribution_class"][:]
    assert classes.shape[1] == 6 and (classes[:, 0] == 3).all()
