"""``RunState``: how far a run has come, saved in every checkpoint and restored on resume."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Best:
    """The best value of the monitored metric so far, and the epoch that reached it."""

    metric: str
    value: float
    epoch: int


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
        """Record ``value`` if it is at least the best so far (higher is better; of equal
        epochs the later, more trained one is kept); say whether."""
        if self.best is not None and value < self.best.value:
            return False
        self.best = Best(metric, value, epoch)
        return True

    @property
    def resume_epoch(self) -> int:
        """The epoch the last checkpoint was written in: its optimizer is that phase's."""
        return self.epochs_done if self.step else max(self.epochs_done - 1, 0)
