"""Site-side evaluation of a segmentation model: its label maps reduced to metric states.

The segmentation counterpart of :func:`medsilo.metrics.evaluation.evaluate_states`. States
are taken batch by batch and added up, so a site streaming volumes from disk never holds
its predictions (or its masks) whole; what it returns is the sums and counts of
:mod:`medsilo.metrics.segmentation`, never a label map.
"""

from __future__ import annotations

import torch
from torch import nn

from medsilo.metrics.segmentation import SegmentationStates, SegmentationSuite
from medsilo.models.weights import set_weights
from medsilo.training.device import model_device
from medsilo.training.samples import Samples
from medsilo.training.task import predictions
from medsilo.types import Weights

#: Images per forward pass (a UNet's activations are far larger than a classifier's).
EVALUATION_BATCH = 32


@torch.no_grad()
def segmentation_states(
    model: nn.Module,
    weights: Weights,
    data: Samples,
    suite: SegmentationSuite,
    num_classes: int,
) -> SegmentationStates:
    """Load ``weights`` into ``model`` and score its label maps on ``data``."""
    if data.task != "segmentation":
        raise ValueError(f"segmentation metrics score label maps; a {data.task} task has none")
    set_weights(model, weights)
    model.eval()
    device = model_device(model)
    states = [suite.empty(num_classes)]
    for x, y in data.ordered_batches(EVALUATION_BATCH):
        outputs = model(x.to(device))
        if outputs.shape[1] != num_classes:
            raise ValueError(
                f"the model gives {outputs.shape[1]} channels; a segmentation task with "
                f"{num_classes} classes (background included) needs {num_classes}"
            )
        predicted = predictions(outputs, "segmentation").cpu().numpy()
        states.append(suite.states(predicted, y.long().cpu().numpy(), num_classes))
    return suite.merge(states)
