"""Which jobs of a multirun run: all of them, a seeded share of each model's source x seed cells (`grid.fraction`),
or named cells (`grid.cells`: model/source_task/seed, or `next:N`, the N cells the reducer ranked most informative
in reduce/next_cells.csv that have not finished). The `none` cells always run: every PGF needs the base model.

The fraction's draw orders each model's cells by a hash of grid.seed and the cell, so it is deterministic and a
larger fraction with the same seed keeps every cell of a smaller one (finished cells are reused).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import polars as pl

from transfer.plan import NEXT_CELLS, cell_name
from transfer.records import cell_dir, finished_hash
from transfer.spec import CellSpec, GridSpec, SpecError
from transfer.tasks import BASELINE

NEXT = re.compile(r"next:(\d+)")


def sweep_setting(specs: Sequence[CellSpec], key: str):
    """A key that must have one value for the whole sweep (grid, plan)."""
    first = getattr(specs[0], key)
    other = next((getattr(s, key) for s in specs if getattr(s, key) != first), None)
    if other is not None:
        raise SpecError(f"{key}: the jobs of one sweep have different values ({first} and {other}); expected one "
                        "value for the whole sweep")
    return first


def in_grid(specs: Sequence[CellSpec]) -> list[bool]:
    """Per job, whether the grid runs it."""
    grid: GridSpec = sweep_setting(specs, "grid")
    if grid.cells is not None and grid.fraction < 1:
        raise SpecError(f"grid.cells={grid.cells} and grid.fraction={grid.fraction:g}: expected one of them "
                        "(grid.fraction=1.0 with a list of cells)")
    if grid.cells is not None:
        wanted = _named(grid.cells, specs)
        return [s.source == BASELINE or cell_name(s) in wanted for s in specs]
    keep: set[int] = set()
    by_model: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        if spec.source != BASELINE:
            by_model.setdefault(spec.model.name, []).append(i)
    for members in by_model.values():
        drawn = sorted(members, key=lambda i: _draw(grid.seed, cell_name(specs[i])))
        keep.update(drawn[:max(1, round(grid.fraction * len(members)))])
    return [s.source == BASELINE or i in keep for i, s in enumerate(specs)]


def _draw(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}/{name}".encode()).hexdigest()


def _named(cells: list[str], specs: Sequence[CellSpec]) -> set[str]:
    names = [cell_name(s) for s in specs]
    wanted: set[str] = set()
    for entry in cells:
        match = NEXT.fullmatch(entry)
        if match:
            wanted |= set(_next_cells(specs, names)[:int(match.group(1))])
        elif entry in names:
            wanted.add(entry)
        else:
            raise SpecError(f"grid.cells: {entry!r} is not a cell of this sweep; expected model/source_task/seed "
                            f"(e.g. {names[-1]}) or next:N")
    return wanted


def _next_cells(specs: Sequence[CellSpec], names: list[str]) -> list[str]:
    """This sweep's unfinished cells in the order of reduce/next_cells.csv."""
    path = specs[0].sweep_dir / NEXT_CELLS
    if not path.is_file():
        raise SpecError(f"grid.cells=[next:N]: no {path}; run a partial grid and its reducer first "
                        "(the reducer ranks the cells to run next)")
    ranked = pl.read_csv(path, schema_overrides={"seed": pl.String}).sort("rank")["cell"].to_list()
    unfinished = {n for n, s in zip(names, specs)
                  if finished_hash(cell_dir(s.sweep_dir, s.model.name, s.source, s.seed)) is None}
    return [c for c in ranked if c in unfinished]
