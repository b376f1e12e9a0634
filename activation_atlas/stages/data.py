"""Stage data (rules/data.smk): the generated dataset, and downloaded archives (also the model
weights of rules/model.smk: a download is a download)."""

from __future__ import annotations

from dataclasses import dataclass

from activation_atlas.data.download import download as fetch
from activation_atlas.data.download import extract_archive
from activation_atlas.data.generated import generate_dataset as write_generated_dataset
from activation_atlas.runtime import atomic_output


@dataclass(frozen=True)
class GeneratedDataset:
    seed: int
    image_size: int
    train_per_class: int
    held_out_per_class: int


def generate_dataset(out_dir, settings: GeneratedDataset, log) -> None:
    with atomic_output(out_dir) as partial:
        write_generated_dataset(
            partial,
            seed=settings.seed,
            image_size=settings.image_size,
            images_per_class={"train": settings.train_per_class, "held_out": settings.held_out_per_class},
            log=log,
        )


@dataclass(frozen=True)
class Download:
    url: str
    sha256: str | None  # None: the first download records its hash in the pin file
    pin: str


def download(dest, settings: Download, log) -> None:
    fetch(settings.url, dest, sha256=settings.sha256, pin_file=settings.pin, log=log)


def unpack_dataset(archive, out_dir, log) -> None:
    extract_archive(archive, out_dir, log=log)
