"""The committed references list every file their run keeps: a new stage's outputs cannot be left out of
them (verify would report them as "not in the reference" on every reviewer's run)."""

import re

import pytest
import yaml

from activation_atlas.checking.manifest import read_manifest
from tools.runs import REPO, snakemake

# A reference is reference/<run>/ or, made with portable kernels, reference/<run>-portable/.
CONFIGS = {
    yaml.safe_load(path.read_text())["run"]: path for path in [REPO / "config.yaml", *(REPO / "config").glob("*.yaml")]
}
REFERENCES = sorted(path.parent.name for path in (REPO / "reference").glob("*/MANIFEST.json"))


def kept_outputs(config_file, portable: bool, run: str, empty_folder) -> list[str]:
    """What the run's manifest job lists, as a dry run of the workflow schedules it (files and folders,
    relative to results/<run>/). A config on the user's own photographs (an image folder not in the
    repository) is dry-run on an empty folder: what a run keeps does not depend on the images."""
    overrides = ["portable=True"] if portable else []
    dataset = yaml.safe_load(config_file.read_text()).get("dataset", {})  # an aligned config has none
    if dataset.get("kind") == "image_folder" and not (REPO / dataset["path"]).is_dir():
        overrides.append(f"dataset={{path: {empty_folder}}}")
    extra = ["--config", *overrides] if overrides else []
    result = snakemake(REPO, "--configfile", str(config_file.relative_to(REPO)), *extra, "-n", "--forceall")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    job = re.search(r"^(?:local)?rule \w*manifest:\n\s+input: (.+)$", result.stdout, re.MULTILINE)
    assert job, result.stdout[-3000:]
    prefix = f"results/{run}/"
    return [path.removeprefix(prefix) for path in job.group(1).split(", ")]


def test_every_reference_names_a_config():
    assert REFERENCES and all(name.removesuffix("-portable") in CONFIGS for name in REFERENCES), REFERENCES


@pytest.mark.workflow
@pytest.mark.parametrize("reference", REFERENCES)
def test_a_reference_lists_every_output_its_run_keeps_and_nothing_else(reference, tmp_path):
    run = reference.removesuffix("-portable")
    outputs = kept_outputs(CONFIGS[run], reference.endswith("-portable"), run, tmp_path)
    entries = set(read_manifest(REPO / "reference" / reference / "MANIFEST.json")["files"])
    # a kept file is an entry; a kept folder (tiles, the viewer's assets) holds at least one
    unlisted = [path for path in outputs if path not in entries and not any(e.startswith(path + "/") for e in entries)]
    unkept = sorted(e for e in entries if not any(e == path or e.startswith(path + "/") for path in outputs))
    assert not unlisted, f"reference/{reference} lacks what its run keeps: {unlisted} (make reference)"
    assert not unkept, f"reference/{reference} lists what its run no longer keeps: {unkept}"
