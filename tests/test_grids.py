"""Layers whose outputs are not (B, C, H, W) maps: token sequences, channels-last maps and vectors are
read as grids (activation_atlas/models/grids.py), decided from a probe pass or named in the config."""

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from activation_atlas.algorithms.extract import (
    ExtractSettings,
    ImageBatches,
    draw_positions,
    extract_activations,
    gather_positions,
)
from activation_atlas.data.image_folder import BatchRead
from activation_atlas.models.capture import capture_layers, resolve_layers
from activation_atlas.models.grids import CLASS_TOKEN, LayerGrid, decide_layer_grids, grid_of_shape, parse_grid
from activation_atlas.models.normalised import ReadThrough, layers_read_through_norms
from activation_atlas.optvis.render import layer_centre


def hand_made_tokens(batch=2, prefix=1, side=3, channels=4) -> torch.Tensor:
    """(B, prefix + side², C) tokens whose value says where it is: 1000·b + 100·row + 10·col + channel
    for patch tokens (row by row), −1 for the prefix tokens."""
    tokens = torch.full((batch, prefix + side * side, channels), -1.0)
    for b in range(batch):
        for row in range(side):
            for col in range(side):
                tokens[b, prefix + row * side + col] = torch.tensor(
                    [1000 * b + 100 * row + 10 * col + c for c in range(channels)], dtype=torch.float32
                )
    return tokens


def test_a_token_layers_positions_are_its_patch_tokens():
    tokens = hand_made_tokens()
    maps = parse_grid("tokens(prefix=1)").as_maps(tokens)
    assert maps.shape == (2, 4, 3, 3)
    positions = draw_positions(5, "blocks.3", np.array([10, 11]), 4, *maps.shape[2:], exclude_edge=1)
    assert (positions == 1).all()  # a 3×3 grid less its edge: the centre patch only
    positions = draw_positions(5, "blocks.3", np.array([10, 11]), 6, *maps.shape[2:], exclude_edge=0)
    vectors = gather_positions(maps, positions, 6)
    for i, (row, col) in enumerate(positions):
        b = i // 6
        assert vectors[i].tolist() == [1000 * b + 100 * row + 10 * col + c for c in range(4)]
        assert vectors[i].tolist() == tokens[b, 1 + row * 3 + col].tolist()  # the token itself


def test_channels_last_maps_and_vectors_read_as_maps():
    nhwc = torch.arange(2 * 5 * 5 * 3, dtype=torch.float32).reshape(2, 5, 5, 3)
    maps = parse_grid("channels_last").as_maps(nhwc)
    assert maps.shape == (2, 3, 5, 5) and maps[1, 2, 4, 0] == nhwc[1, 4, 0, 2]
    vectors = torch.randn(3, 7)
    assert torch.equal(parse_grid("vector").as_maps(vectors)[:, :, 0, 0], vectors)
    assert parse_grid("maps").as_maps(maps) is maps


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((1, 197, 768), "tokens(prefix=1)"),
        ((1, 196, 768), "tokens(prefix=0)"),
        ((1, 201, 384), "tokens(prefix=5)"),
        ((1, 64, 8, 8), "maps"),
        ((1, 8, 8, 96), "channels_last"),
        ((1, 1000), "vector"),
        ((1, 7, 7, 7), None),
        ((1, 3, 5, 7), None),
        ((1, 2, 3, 4, 5), None),
    ],
)
def test_grid_of_shape(shape, expected):
    grid = grid_of_shape(shape)
    assert (str(grid) if grid else None) == expected


def test_a_cube_shaped_output_is_told_by_the_axes_that_grow():
    assert grid_of_shape((1, 8, 8, 8), (1, 8, 12, 12)) == LayerGrid("maps")
    assert grid_of_shape((1, 8, 8, 8), (1, 12, 12, 8)) == LayerGrid("channels_last")
    assert grid_of_shape((1, 8, 8, 8), (1, 12, 12, 12)) is None


def test_bad_grid_names_say_what_is_valid():
    with pytest.raises(ValueError, match=r"unknown layer grid 'tokens\(1\)'; valid: maps, channels_last"):
        parse_grid("tokens(1)")


class TinyTokenNet(nn.Module):
    """A patch embedding, a class token, one block and a head reading the mean token: the shapes of a ViT."""

    def __init__(self, dim=6, patch=4, classes=3):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.block = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU())
        self.cube = nn.Identity()
        self.sequence_first = nn.Identity()
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        patches = self.embed(x)
        self.cube(patches[:, :, :6, :6])  # a (B, 6, 6, 6) output
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), patches.flatten(2).transpose(1, 2)], dim=1)
        tokens = tokens + self.block(tokens)
        self.sequence_first(tokens.transpose(0, 1))  # (T, B, C)
        return self.head(tokens.mean(dim=1))  # every token reaches the logits


def test_grids_are_decided_from_a_probe_and_a_configured_grid_must_fit():
    torch.manual_seed(0)
    model = TinyTokenNet().eval()
    names = ["embed", "block", "head"]
    modules = resolve_layers(model, names, names)
    assert decide_layer_grids(model, modules, 24, {}) == {"block": "tokens(prefix=1)", "head": "vector"}
    # 36 patch tokens and a class token: prefix 0 leaves 37, not a square.
    with pytest.raises(ValueError, match=r"model.layer_grids.block = tokens\(prefix=0\): .*37 after the prefix"):
        decide_layer_grids(model, modules, 24, {"block": "tokens(prefix=0)"})
    with pytest.raises(ValueError, match=r"model.layer_grids.head = channels_last: the layer gives 1×3"):
        decide_layer_grids(model, modules, 24, {"head": "channels_last"})
    cube = resolve_layers(model, ["cube"], ["cube"])
    # 6 channels, 6×6 patches at 24 px; at 36 px the slice still cuts 6×6: the shape never tells.
    with pytest.raises(ValueError, match=r"layer 'cube' gives 1×6×6×6: .*model.layer_grids: \{cube: "):
        decide_layer_grids(model, cube, 24, {})
    assert decide_layer_grids(model, cube, 24, {"cube": "channels_last"}) == {"cube": "channels_last"}
    sequence_first = resolve_layers(model, ["sequence_first"], ["sequence_first"])
    with pytest.raises(
        ValueError,
        match=r"^layer 'sequence_first' gives 37×1×6 for one image: its first axis is not "
        r"the batch",
    ):
        decide_layer_grids(model, sequence_first, 24, {"sequence_first": "tokens(prefix=1)"})


def test_the_icon_objective_reads_the_centre_patch_of_a_token_layer():
    torch.manual_seed(0)
    model = TinyTokenNet().eval()
    module = resolve_layers(model, ["block"], ["block"])
    images = torch.rand(2, 3, 20, 20)  # 5×5 patches: the centre is patch 12, token 13
    captured = {}
    handle = model.block.register_forward_hook(lambda _m, _i, out: captured.setdefault("out", out))
    centre = layer_centre(model, module, images, parse_grid("tokens(prefix=1)"))
    handle.remove()
    assert torch.equal(centre, captured["out"][:, 13])


def test_extraction_and_attribution_of_a_token_layer(tmp_path):
    """The activation file of a token layer holds its patch tokens at the drawn patch positions, and
    their attribution h·∂logit/∂h computed on the tokens themselves."""
    torch.manual_seed(0)
    model = TinyTokenNet().eval()
    modules = resolve_layers(model, ["block"], ["block"])
    grid = parse_grid("tokens(prefix=1)")
    images = torch.rand(6, 3, 20, 20)
    labels = np.zeros(6, dtype=np.int64)
    batches = ImageBatches(lambda idx: BatchRead(images[idx], idx, [], []), labels, 4, 20)
    path = tmp_path / "block.h5"
    extract_activations(
        model,
        modules,
        batches,
        6,
        {"block": path},
        ExtractSettings(seed=3, positions_per_image=2, exclude_edge=1, attribution=True),
        provenance={},
        log=lambda _: None,
        grids={"block": grid},
    )
    with h5py.File(path, "r") as f:
        assert f.attrs["spatial_size"].tolist() == [5, 5]
        acts, position, attribution = f["activations"][:], f["position"][:], f["attribution"][:]
    assert ((position >= 1) & (position <= 3)).all()  # edge exclusion in patches
    captured = {}
    handle = model.block.register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", out))
    logits = model(images)
    handle.remove()
    for row, (r, c) in enumerate(position):
        token = captured["out"][row // 2, 1 + r * 5 + c]
        np.testing.assert_allclose(acts[row], token.detach().numpy(), rtol=1e-5, atol=1e-6)  # other batches
        for j in range(3):
            (grad,) = torch.autograd.grad(logits[row // 2, j], captured["out"], retain_graph=True)
            expected = (token * grad[row // 2, 1 + r * 5 + c]).sum().item()
            assert attribution[row, j] == pytest.approx(expected, rel=1e-3, abs=1e-5)


def test_icons_for_a_model_of_one_input_size_must_have_that_size():
    import torchvision

    from activation_atlas.stages.render import check_icon_size

    vit = torchvision.models.vit_b_16(weights=None, image_size=32).eval()
    block = resolve_layers(vit, ["encoder.layers.encoder_layer_0"], dict(vit.named_modules()))
    check_icon_size(vit, block, 32, 32, "cpu")
    with pytest.raises(
        ValueError,
        match=r"render.icon_size = 48: the model does not take 48 px images "
        r"\(AssertionError: Wrong image height! .*set render.icon_size to its "
        r"input size, 32",
    ):
        check_icon_size(vit, block, 48, 32, "cpu")


@pytest.mark.parametrize(
    "architecture, kwargs, expected",
    [
        # Random weights with torchvision's head at zero: no logit reads anything, so no layer is class-token read.
        (
            "vit_b_16",
            {"image_size": 64},
            {"encoder.layers.encoder_layer_2": "tokens(prefix=1)", "encoder.ln": "tokens(prefix=1)", "heads": "vector"},
        ),
        (
            "swin_t",
            {},
            {
                "features.0": "channels_last",
                "features.1": "channels_last",
                "features.3.1": "channels_last",
                "norm": "channels_last",
            },
        ),
        ("convnext_tiny", {}, {"classifier": "vector"}),
    ],
)
def test_the_grids_of_torchvisions_transformers_and_convnext(architecture, kwargs, expected):
    import torchvision

    model = torchvision.models.get_model(architecture, weights=None, **kwargs).eval()
    layers = {
        "vit_b_16": ["encoder.layers.encoder_layer_2", "encoder.ln", "heads"],
        "swin_t": ["features.0", "features.1", "features.3.1", "norm", "avgpool"],
        "convnext_tiny": ["features.1", "features.3.0", "avgpool", "classifier"],
    }[architecture]
    modules = resolve_layers(model, layers, dict(model.named_modules()))
    assert decide_layer_grids(model, modules, 64, {}) == expected


@pytest.fixture(scope="module")
def vit_b_16():
    """torchvision's ViT-B/16 at random weights for 32 px images (2×2 patches after its class token): its
    head reads the class token, so no logit depends on the last block's patch tokens, whatever the weights."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.vit_b_16(weights=None, image_size=32).eval()
    nn.init.normal_(model.heads.head.weight, std=0.02)  # torchvision starts its head at zero: all logits 0
    return model


def test_a_class_token_vits_last_block_is_read_as_its_class_token(vit_b_16):
    blocks = ["encoder.layers.encoder_layer_10", "encoder.layers.encoder_layer_11"]
    modules = resolve_layers(vit_b_16, blocks, dict(vit_b_16.named_modules()))
    said = []
    grids = decide_layer_grids(vit_b_16, modules, 32, {}, log=said.append)
    assert grids == {blocks[0]: "tokens(prefix=1)", blocks[1]: "class_token"}
    assert said == [
        f"layer {blocks[1]}: the logits do not read its patch tokens, only its class token, which it is "
        f"read as (an atlas of its patches would show what no class depends on: set model.layer_grids: "
        f"{{{blocks[1]}: tokens(prefix=1)}} for one anyway)"
    ]
    # As configured, a grid is kept.
    assert decide_layer_grids(vit_b_16, modules, 32, {blocks[1]: "tokens(prefix=1)"}) == {
        blocks[0]: "tokens(prefix=1)",
        blocks[1]: "tokens(prefix=1)",
    }


def extract_vit(model, layer: str, grid: str, path, log=lambda _: None, attributed_at=None):
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    batches = ImageBatches(lambda idx: BatchRead(images[idx], idx, [], []), np.zeros(4, dtype=np.int64), 4, 32)
    modules = resolve_layers(model, [layer], dict(model.named_modules()))
    extract_activations(
        model,
        modules,
        batches,
        4,
        {layer: path},
        ExtractSettings(seed=0, positions_per_image=1, exclude_edge=0, attribution=True, attribution_top_k=3),
        provenance={},
        log=log,
        grids={layer: parse_grid(grid)},
        attributed_at=attributed_at,
    )
    return images


def test_zero_attribution_of_a_class_token_vits_last_patches_stops_extraction_with_what_to_pick(vit_b_16, tmp_path):
    last = "encoder.layers.encoder_layer_11"
    with pytest.raises(
        ValueError,
        match=rf"^extract.attribution: layer '{last}' \(read as tokens\(prefix=1\)\) has "
        r"attribution at most 0 for every activation of the first batch.*no logit "
        r"depends on the positions it is read at.*model.layer_grids: "
        rf"{{{last}: class_token}}\), pick an earlier layer",
    ):
        extract_vit(vit_b_16, last, "tokens(prefix=1)", tmp_path / "patches.h5")


def test_the_norms_a_class_token_vits_layers_are_read_through_are_found(vit_b_16):
    """LayerNorm ignores its input's scale: the last block's class token reaches the logits only through the
    final norm, and block 10's patch tokens only through block 11's first norm (the attention into the class
    token); block 10's class token also reaches them through the residual stream, so it is attributed itself."""
    last, block10 = "encoder.layers.encoder_layer_11", "encoder.layers.encoder_layer_10"
    modules = resolve_layers(vit_b_16, [block10, last], dict(vit_b_16.named_modules()))
    assert layers_read_through_norms(
        vit_b_16, modules, {block10: parse_grid("tokens(prefix=1)"), last: CLASS_TOKEN}, 32, "cpu"
    ) == {block10: ReadThrough(f"{last}.ln_1", "its output"), last: ReadThrough("encoder.ln", "its output")}
    assert layers_read_through_norms(vit_b_16, modules, {block10: CLASS_TOKEN, last: CLASS_TOKEN}, 32, "cpu") == {
        last: ReadThrough("encoder.ln", "its output")
    }


def test_the_last_blocks_class_token_is_attributed_at_the_final_norm_or_extraction_stops(vit_b_16, tmp_path):
    last = "encoder.layers.encoder_layer_11"
    # Attributed at its own output, it has float rounding for attribution: extraction stops, saying so.
    with pytest.raises(
        ValueError,
        match=rf"^extract.attribution: layer '{last}' \(read as class_token\) has attribution "
        r"at most [0-9.e-]+ for every activation of the first batch, against logits up "
        r"to [0-9.]+: float rounding: .* Pick another layer",
    ):
        extract_vit(vit_b_16, last, "class_token", tmp_path / "own.h5")
    # At the final norm's output z, less its bias β: (z − β)·∂logit/∂z, of the order of the logits.
    images = extract_vit(vit_b_16, last, "class_token", tmp_path / "norm.h5", attributed_at={last: "encoder.ln"})
    with h5py.File(tmp_path / "norm.h5", "r") as f:
        attribution, classes = f["attribution"][:], f["attribution_class"][:]
        assert "at the output of encoder.ln less its bias" in f.attrs["attribution"]
    with torch.enable_grad(), capture_layers({"ln": vit_b_16.encoder.ln}) as captured:
        logits = vit_b_16(images)
        (grad,) = torch.autograd.grad(logits.gather(1, torch.from_numpy(classes[:, :1]).long()).sum(), captured["ln"])
    expected = ((captured["ln"][:, 0] - vit_b_16.encoder.ln.bias) * grad[:, 0]).sum(dim=1).detach().numpy()
    np.testing.assert_allclose(attribution[:, 0], expected, rtol=1e-3, atol=1e-5)
    assert np.abs(attribution).max() > 1e-2 * np.abs(logits.detach().numpy()).max()


def vit_pytorch_layout(pool: str) -> nn.Module:
    """examples/vit_pytorch_layout.py at random weights for 32 px images (4×4 patches after its class token):
    its head is x[:, 0] (pool="cls") or x.mean(1) (pool="mean"), then to_latent, then LayerNorm and Linear."""
    from activation_atlas.models.loading import build_model
    from tools.runs import REPO

    torch.manual_seed(0)
    return build_model(
        {
            "kind": "user",
            "factory": "vit_pytorch_layout:vit",
            "python_path": [str(REPO / "examples")],
            "kwargs": {"dim": 32, "depth": 2, "heads": 2, "mlp_dim": 64, "pool": pool},
        }
    ).eval()


@pytest.mark.parametrize(
    "pool, grid, takes",
    [("cls", CLASS_TOKEN, "its class token"), ("mean", parse_grid("tokens(prefix=1)"), "all its tokens, pooled")],
)
def test_a_norm_that_takes_a_slice_or_pooling_of_the_last_block_is_found(pool, grid, takes):
    model = vit_pytorch_layout(pool)
    feed_forward = "transformer.layers.1.1"
    modules = resolve_layers(model, ["transformer", feed_forward], dict(model.named_modules()))
    grids = {"transformer": grid, feed_forward: parse_grid("tokens(prefix=1)")}
    # The last feed-forward's output is added to the residual stream before the norm: attributed itself.
    assert layers_read_through_norms(model, modules, grids, 32, "cpu") == {
        "transformer": ReadThrough("mlp_head.0", takes)
    }
    assert decide_layer_grids(model, {"transformer": model.transformer}, 32, {}) == {"transformer": str(grid)}


def test_pooled_tokens_are_each_attributed_their_share_of_the_norms_output(tmp_path):
    """Token t of T pooled by their mean gives the norm γ⊙(h_t − mean(h_t))/(T·σ) of its output less its bias, σ
    the deviation of the pooled vector: its share, with the scale held, of (z − β)·∂logit/∂z."""
    model = vit_pytorch_layout("mean")
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    batches = ImageBatches(lambda idx: BatchRead(images[idx], idx, [], []), np.zeros(4, dtype=np.int64), 4, 32)
    extract_activations(
        model,
        {"transformer": model.transformer},
        batches,
        4,
        {"transformer": tmp_path / "a.h5"},
        ExtractSettings(seed=0, positions_per_image=3, exclude_edge=0, attribution=True),
        provenance={},
        log=lambda _: None,
        grids={"transformer": parse_grid("tokens(prefix=1)")},
        attributed_at={"transformer": "mlp_head.0"},
    )
    with h5py.File(tmp_path / "a.h5", "r") as f:
        attribution, position = f["attribution"][:], f["position"][:]
        assert "at the output of mlp_head.0 less its bias" in f.attrs["attribution"]
    norm = model.mlp_head[0]
    with torch.enable_grad(), capture_layers({"t": model.transformer}) as out, capture_layers({"z": norm}) as z:
        logits = model(images)
        (grad,) = torch.autograd.grad(logits[:, 2].sum(), z["z"])
    tokens = out["t"].detach()
    pooled = tokens.mean(dim=1)
    sigma = (pooled.var(dim=1, unbiased=False) + norm.eps).sqrt()
    centred = tokens - tokens.mean(dim=2, keepdim=True)
    shares = (norm.weight.detach() * centred * grad[:, None]).sum(dim=2) / (tokens.shape[1] * sigma[:, None])  # (B, T)
    z_less_bias = ((z["z"] - norm.bias) * grad).sum(dim=1).detach()
    torch.testing.assert_close(shares.sum(dim=1), z_less_bias, rtol=1e-4, atol=1e-5)  # they add up to it
    image = np.repeat(np.arange(4), 3)
    expected = shares[image, 1 + position[:, 0] * 4 + position[:, 1]].numpy()
    np.testing.assert_allclose(attribution[:, 2], expected, rtol=1e-4, atol=1e-6)
    assert np.abs(expected).max() > 1e-3 * np.abs(logits.detach().numpy()).max()
