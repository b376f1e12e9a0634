"""What the viewer shows of a layer's sparse dictionary: beside each cell of the layer's activation atlas,
the atoms its mean activation is made of (the dictionary's encoding of it), and beside each atom of the
feature atlas, the cells where it is strongest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from activation_atlas.algorithms.dictionary import SaeEncoder
from activation_atlas.formats.cells import read_cells

STRONGEST_ATOMS = 3  # listed per cell
STRONGEST_CELLS = 5  # listed per atom


def strongest_atoms(means: np.ndarray, encoder: SaeEncoder) -> list[list[list]]:
    """Per cell mean, its atoms with the highest codes (at most STRONGEST_ATOMS, non-zero), as
    [atom, code] strongest first."""
    codes, _ = encoder.encode(means)
    values, atoms = codes.topk(min(STRONGEST_ATOMS, codes.shape[1]), dim=1)
    return [
        [[int(a), float(f"{v:.4g}")] for a, v in zip(row_atoms.tolist(), row_values.tolist()) if v > 0]
        for row_atoms, row_values in zip(atoms, values)
    ]


def layer_ties(levels: list[tuple[int, Path]], encoder: SaeEncoder) -> tuple[dict, dict]:
    """For a layer's zoom levels [(grid size, cells file)]: per grid size its cells' strongest atoms
    (strongest_atoms), and per atom the cells where it is strongest, over every level, as
    [grid, col, row, code] (at most STRONGEST_CELLS, strongest first; ties: the coarser grid, then the
    cell's order)."""
    atoms_of_cells, cells_of_atom = {}, {}
    for grid, cells_path in levels:
        cells = read_cells(cells_path)
        atoms_of_cells[grid] = strongest_atoms(cells.mean, encoder)
        for row, col, atoms in zip(cells.row.tolist(), cells.col.tolist(), atoms_of_cells[grid]):
            for atom, code in atoms:
                cells_of_atom.setdefault(atom, []).append([grid, col, row, code])
    strongest = {
        atom: sorted(found, key=lambda cell: -cell[3])[:STRONGEST_CELLS] for atom, found in cells_of_atom.items()
    }
    return atoms_of_cells, strongest
