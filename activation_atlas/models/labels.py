"""Names of a model's logits.

Every model kind gets one name per logit: `model.labels` when configured (a list, a text file of
one name a line, or `imagenet1k`: ImageNet-1k's 1,000 class names); otherwise the names its kind ships
(InceptionV1's list, torchvision's weight metadata), the dataset's class folders (a model trained
on the dataset, or a user model with as many logits as the dataset has classes) or, failing all,
class_0 … class_{K-1}. The logits of ImageNet-1k's names and of InceptionV1's shipped names also answer
to their WordNet ids, the names of ImageNet's folders.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from activation_atlas.models.kinds import model_kind
from activation_atlas.runtime import RunError

NAMING_HINT = (
    "name them with model.labels (a list of names, a text file with one name a line, or imagenet1k "
    "for an ImageNet-1k classifier)"
)
# ImageNet-1k's classes in logit order: WordNet id and name a line (NOTICE.md).
IMAGENET1K = Path(__file__).with_name("imagenet1k_classes.tsv")
# The paper's InceptionV1's logits that name an ImageNet-1k class: logit, WordNet id and shipped name a
# line (NOTICE.md).
INCEPTIONV1_WORDNET_IDS = Path(__file__).with_name("inceptionv1_wordnet_ids.tsv")


@lru_cache(maxsize=1)
def imagenet1k_classes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(WordNet ids, names) of ImageNet-1k's 1,000 classes, in logit order."""
    rows = [line.split("\t") for line in IMAGENET1K.read_text().splitlines()]
    return tuple(row[0] for row in rows), tuple(row[1] for row in rows)


@lru_cache(maxsize=1)
def inceptionv1_wordnet_ids() -> tuple[tuple[int, str, str], ...]:
    """(logit, WordNet id, shipped name) of each of InceptionV1's logits that names an ImageNet-1k class."""
    rows = [line.split("\t") for line in INCEPTIONV1_WORDNET_IDS.read_text().splitlines()]
    return tuple((int(row[0]), row[1], row[2]) for row in rows)


def wordnet_logits(class_names: list[str]) -> dict[str, int]:
    """WordNet id → logit, where the names are a list whose ids are known (ImageNet-1k's, InceptionV1's
    shipped names); empty for any other list."""
    wnids, names = imagenet1k_classes()
    if tuple(class_names) == names:
        return {wnid: k for k, wnid in enumerate(wnids)}
    rows = inceptionv1_wordnet_ids()
    if len(class_names) > rows[-1][0] and all(class_names[k] == name for k, _, name in rows):
        return {wnid: k for k, wnid, _ in rows}
    return {}


def logit_index(class_names: list[str]) -> dict[str, int]:
    """Every name a logit answers to: its name and, where the list's WordNet ids are known, its id."""
    return {name: k for k, name in enumerate(class_names)} | wordnet_logits(class_names)


def count_logits(model, input_size: int) -> int:
    """The length of the model's output for one image of input_size px."""
    import torch  # here: the config check reads label lists before any job, without torch

    with torch.no_grad():
        output = model(torch.zeros(1, 3, input_size, input_size, device=next(model.parameters()).device))
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise RunError(f"the model's output for a batch of one image is {shape}; expected logits of shape (1, classes)")
    return int(output.shape[1])


def configured_labels(labels) -> list[str]:
    """model.labels: a list of names, imagenet1k, or the path of a text file with one name a line."""
    if isinstance(labels, (list, tuple)):
        return [str(name) for name in labels]
    if labels == "imagenet1k":
        return list(imagenet1k_classes()[1])
    path = Path(labels)
    if not path.is_file():
        raise RunError(f"model.labels {labels!r} is neither a list of names, imagenet1k, nor an existing text file")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def builtin_labels(model_cfg: dict) -> list[str] | None:
    """The label list that comes with the model itself (its kind's), if any."""
    shipped = model_kind(model_cfg["kind"]).shipped_labels
    return shipped(model_cfg) if shipped is not None else None


def abbreviated(names: list[str], shown: int = 10) -> str:
    """The first `shown` names, comma-separated, with "..." when there are more; "none" for none."""
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "") if names else "none"


def logit_names(model_cfg: dict, n_logits: int, dataset_classes: list[str], log) -> list[str]:
    """One name for each of the model's n_logits logits."""
    if model_cfg.get("labels") is not None:
        names = configured_labels(model_cfg["labels"])
        if len(names) != n_logits:
            raise RunError(f"model.labels names {len(names)} classes, but the model has {n_logits} logits")
        return names
    names = builtin_labels(model_cfg)
    if names is not None:
        return names
    if model_kind(model_cfg["kind"]).trained:
        return list(dataset_classes)
    if dataset_classes and len(dataset_classes) == n_logits:
        log(
            f"naming the model's {n_logits} logits after the dataset's class folders, in sorted order: "
            f"{abbreviated(dataset_classes)}"
        )
        return list(dataset_classes)
    log(
        f"WARNING: the model has {n_logits} logits and the dataset {len(dataset_classes)} class folders, so "
        f"the logits are named class_0 … class_{n_logits - 1}: {NAMING_HINT}"
    )
    return [f"class_{k}" for k in range(n_logits)]
