"""``RunState``: how far a run has come, saved in every checkpoint and restored on resume."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Best:
    """The best value of the monitored metric so far: ``epoch``, the last epoch that reached
    it (its weights are the best checkpoint: of equal epochs, the more trained), and
    ``first``, the epoch it was first reached (patience counts from there, as Keras')."""

    metric: str
    value: float
    epoch: int
    first: int | None = None  # None in checkpoints written before ``first`` existed

    @property
    def since(self) -> int:
        return self.epoch if self.first is None else self.first


@dataclass
class RunState:
    """A run's progress. ``epochs_done`` whole epochs and ``step`` batches into the next one
    are the position in the data stream; ``history`` holds one record per finished epoch."""

    epochs_done: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: Best | None = None
    train_seconds: float = 0.0
    stopped_early: int | None = None  # the epoch after which patience ran out
    seed_states: list[list[int]] = field(default_factory=list)  # dropout/drop-path generators

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        """Read a checkpoint's ``state.json``; an unknown key is an error, not ignored."""
        data = dict(data)
        best = data.pop("best", None)
        try:
            state = cls(**data)
        except TypeError as e:
            raise ValueError(f"checkpoint state does not match RunState: {e}") from e
        state.best = Best(**best) if best is not None else None
        return state

    def improve(self, metric: str, value: float, epoch: int) -> bool:
        """Record ``value`` if it is at least the best so far (higher is better); say whether.
        An equal value moves ``best.epoch`` on but not ``best.first``."""
        best = self.best
        if best is not None and value < best.value:
            return False
        first = best.since if best is not None and value == best.value else epoch
        self.best = Best(metric, value, epoch, first)
        return True

    @property
    def resume_epoch(self) -> int:
        """The epoch the last checkpoint was written in: its optimizer is that phase's."""
        return self.epochs_done if self.step else max(self.epochs_done - 1, 0)
