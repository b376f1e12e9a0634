"""Stopping rules for feature inversion (render.stop): an attempt stops when its cosine to the
objective's direction has levelled off, and an attempt that trails its icon's best is dropped. Every
decision reads only the icon's own attempts, which share a batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StopRule:
    """When an attempt stops before `steps` (render.stop). Every `window` steps, an attempt's level is
    its mean cosine to the objective's direction over the last window (under the random transforms):
    it stops when its level rose by less than `min_gain` since the previous window; at step
    `prune_at`, an attempt whose level trails its icon's best attempt by more than `prune_margin` is
    dropped (stops, and is not kept)."""

    window: int
    min_gain: float
    prune_at: int | None = None
    prune_margin: float = 0.0

    @classmethod
    def from_section(cls, stop: dict | None) -> StopRule | None:
        if stop is None:
            return None
        return cls(
            window=stop["window"],
            min_gain=stop["min_gain"],
            prune_at=stop.get("prune_at"),
            prune_margin=stop.get("prune_margin", 0.0),
        )


class StopTracker:
    """The stopping rule applied to one batch: which rows (attempts) still run, and the parameters of
    those that stopped, held as they were when they stopped."""

    def __init__(self, rule: StopRule, icon_of_row: torch.Tensor, steps: int):
        self.rule = rule
        _, self.icon_of_row = torch.unique(icon_of_row, return_inverse=True)  # icons numbered in the batch
        rows = len(icon_of_row)
        device = icon_of_row.device
        self.active = torch.ones(rows, dtype=torch.bool, device=device)
        self.dropped = torch.zeros(rows, dtype=torch.bool, device=device)
        self.steps_run = torch.full((rows,), steps, dtype=torch.int64, device=device)
        self.window_sum = torch.zeros(rows, device=device)
        self.level = torch.full((rows,), float("nan"), device=device)
        self.held: list[torch.Tensor] | None = None
        self.rows = torch.arange(rows, device=device)

    def record(self, step: int, cosines: torch.Tensor, parameters: list[torch.Tensor]) -> None:
        """Add the running rows' cosines of this step; at the end of a window, stop or drop attempts.
        Called after the optimiser's step, so a row stopped here keeps its parameters as they are now."""
        self.window_sum[self.rows] += cosines
        if (step + 1) % self.rule.window:
            return
        level = self.window_sum / self.rule.window
        stop = self.active & (level - self.level < self.rule.min_gain)  # nan (first window) never stops
        self.level = torch.where(self.active, level, self.level)
        if step + 1 == self.rule.prune_at:
            best = torch.full_like(self.level, -torch.inf).scatter_reduce(0, self.icon_of_row, self.level, "amax")
            drop = self.level < best[self.icon_of_row] - self.rule.prune_margin
            self.dropped |= drop
            stop |= self.active & drop
        self.window_sum.zero_()
        if stop.any():
            self.steps_run[stop] = step + 1
            self.active &= ~stop
            self.held = [p.detach().clone() for p in parameters] if self.held is None else self.held
            for held, p in zip(self.held, parameters):
                held[stop] = p.detach()[stop]
            self.rows = self.active.nonzero().squeeze(1)

    def hold_stopped(self, parameters: list[torch.Tensor]) -> None:
        """Put back the parameters of stopped rows (Adam's momentum moves them with a zero gradient)."""
        if self.held is None:
            return
        with torch.no_grad():
            for held, p in zip(self.held, parameters):
                stopped = (~self.active).view(-1, *[1] * (p.dim() - 1))
                p.copy_(torch.where(stopped, held, p))
