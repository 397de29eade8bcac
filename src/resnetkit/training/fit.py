"""``fit_phases``: Keras ``fit`` over a run's phases, resumable at any step.

Training from scratch is one phase; fine-tuning runs several, each entered with its own
trainable stages and a fresh optimizer (``enter``). A run stopped mid-epoch first finishes
that epoch, then runs whole epochs, so the batches after a resume are those an
uninterrupted run would see (the stream is a function of (seed, epoch) alone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import tensorflow as tf

from resnetkit.training.callbacks import RunInterrupted, RunRecorder
from resnetkit.training.checkpoint import Checkpoints
from resnetkit.training.phases import Phase
from resnetkit.training.state import RunState


@dataclass
class Streams:
    """The data one run fits on."""

    train: Callable[[int, int, int], tf.data.Dataset]  # (first epoch, epochs, skip) → batches
    val: tf.data.Dataset | None
    steps_per_epoch: int
    class_weight: dict | None = None


def current_phase(phases: list[Phase], state: RunState) -> int:
    """Index of the phase the last checkpoint was written in (its optimizer is that phase's)."""
    at = min(state.resume_epoch, phases[-1].end - 1)
    return next(i for i, p in enumerate(phases) if p.first <= at < p.end)


def segments(phase: Phase, state: RunState, steps: int) -> list[tuple[int, int, int]]:
    """(first epoch, steps, skipped steps) of each ``fit`` call that finishes ``phase``."""
    first = max(state.epochs_done, phase.first)
    skip = state.step if state.epochs_done >= phase.first else 0
    out = []
    if skip and first < phase.end:
        out.append((first, steps - skip, skip))
        first += 1
    if first < phase.end:
        out.append((first, steps, 0))
    return out


def fit_phases(
    model: keras.Model,
    phases: list[Phase],
    streams: Streams,
    *,
    state: RunState,
    enter: Callable[[Phase], None],
    recorder: RunRecorder,
    callbacks: list,
    positioned: list,
    checkpoints: Checkpoints,
) -> None:
    """Fit ``model`` through ``phases`` from where ``state`` says the run is.

    ``enter(phase)`` sets trainable layers and compiles; the phase of the resumed
    checkpoint must already be entered (its optimizer state was restored into it).
    ``positioned``: callbacks that count steps and need the offset of a resumed epoch.
    """
    start = current_phase(phases, state)
    end = phases[-1].end
    for i in range(start, len(phases)):
        if state.stopped_early:
            break
        if i != start:
            enter(phases[i])
        for epoch, n_steps, skip in segments(phases[i], state, streams.steps_per_epoch):
            for callback in positioned:
                callback.offset = skip
            span = 1 if skip else phases[i].end - epoch
            model.fit(
                streams.train(epoch, span, skip),
                epochs=epoch + span,
                initial_epoch=epoch,
                steps_per_epoch=n_steps,
                validation_data=streams.val,
                class_weight=streams.class_weight,
                callbacks=callbacks,
                shuffle=False,  # the stream is already shuffled, per epoch
                verbose=0,
            )
            if recorder.interrupted:
                raise RunInterrupted(recorder.interrupted)
            # A stream shorter than its steps (files that failed to decode) ends fit() early;
            # the engine silences Keras' own warning, which also fires on every evaluation
            # of a set of unknown length.
            if not state.stopped_early and state.epochs_done < epoch + span:
                raise RuntimeError(
                    f"the training data ran out in epoch {state.epochs_done + 1}: files "
                    "failed to decode during training (listed in the run's bad_images file)"
                )
            if epoch + span < end and not state.stopped_early:
                # fit() ends by copying the EMA weights into the model; the next segment
                # must go on from the raw weights, which the checkpoint just saved holds.
                Checkpoints.restore(model, checkpoints.latest())
