"""What a model must output for a task, and the one forward pass that checks it.

A model whose outputs do not fit the task (a 10-logit head on a binary task, a classifier
given a segmentation task, a user's factory that ignores ``num_outputs``) would otherwise
fail deep inside the first training step, or worse, train on a silently broadcast loss.
:func:`check_outputs` runs once when the model is built, before any run folder exists.
"""

from __future__ import annotations

import torch
from torch import nn

from medsilo.data.base import Task
from medsilo.training.task import output_size


def expected_output_shape(
    task: Task, num_classes: int, input_shape: tuple[int, ...], batch: int
) -> tuple[int, ...]:
    """``(batch, outputs)`` (:func:`~medsilo.training.task.output_size`), or
    ``(batch, num_classes, *spatial)`` for segmentation."""
    if task == "segmentation":
        return (batch, num_classes, *input_shape[1:])
    return (batch, output_size(task, num_classes))


def check_outputs(
    model: nn.Module, label: str, input_shape: tuple[int, ...], num_classes: int, task: Task
) -> None:
    """One forward pass of two zero examples, in eval mode and with the RNG state restored,
    so no weight, BatchNorm statistic or random stream moves; raise ``ValueError`` naming
    ``label`` when the model refuses the inputs or answers with the wrong shape."""
    expected = expected_output_shape(task, num_classes, input_shape, batch=2)
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            out = model(torch.zeros((2, *input_shape)))
    except RuntimeError as err:
        raise ValueError(
            f"model {label} does not accept this dataset's inputs {input_shape}: {err}"
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            f"model {label} returned {type(out).__name__} for a batch; it must return one "
            f"tensor of logits shaped {expected} (for a batch of 2)"
        )
    if tuple(out.shape) != expected:
        raise ValueError(
            f"model {label} outputs shape {tuple(out.shape)} for a batch of 2 inputs "
            f"{input_shape}, but a {task} task with {num_classes} classes needs {expected}"
        )
