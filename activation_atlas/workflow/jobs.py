"""How a stage's work splits into jobs (in parallel locally, separate jobs on a cluster): extraction
shards and render chunks. The workflow counts the jobs when it builds the DAG and each job finds its
share here, with the same arithmetic."""

from __future__ import annotations

from activation_atlas.runtime import RunError


def shard_images(n_images: int, batch_size: int, shard: int, shards: int, key: str = "extract.shards") -> range:
    """The images of shard `shard` of `shards`: a run of whole batches, so each image meets the same
    batch (same arithmetic) whatever the number of shards, and the merged files are identical."""
    if not 0 <= shard < shards:
        raise RunError(f"shard {shard} does not exist: shards are 0–{shards - 1}")
    n_batches = -(-n_images // batch_size)
    if shards > n_batches:
        raise RunError(
            f"{key}={shards} is more than the {n_batches} batches of {batch_size} images "
            f"to process: use at most {n_batches} shards"
        )
    first, last = shard * n_batches // shards, (shard + 1) * n_batches // shards
    return range(min(first * batch_size, n_images), min(last * batch_size, n_images))


def render_chunk_count(n_cells: int, cells_per_job: int | None, attempts: int, batch_size: int, layer: str) -> int:
    """How many render jobs the n_cells of one of the layer's grids take (render.cells_per_job each)."""
    if cells_per_job is None:
        return 1
    if cells_per_job * attempts % batch_size:
        # Chunks that end mid-batch would batch icons differently from one job, and change their bits.
        raise RunError(
            f"render.cells_per_job={cells_per_job} for layer {layer}: cells_per_job × attempts "
            f"({cells_per_job * attempts}) must be a multiple of batch_size ({batch_size})"
        )
    return max(1, -(-n_cells // cells_per_job))


def render_chunk_cells(chunk: int | None, cells_per_job: int | None) -> slice:
    """The kept cells (in file order) of render job `chunk`; all of them without chunks."""
    if chunk is None or cells_per_job is None:
        return slice(None)
    return slice(chunk * cells_per_job, (chunk + 1) * cells_per_job)
