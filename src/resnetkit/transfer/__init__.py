"""Transfer learning: fine-tune a pretrained ResNet on a new task (see finetune.py)."""

from resnetkit.transfer.finetune import STRATEGIES, Phase, finetune, plan_phases

__all__ = ["STRATEGIES", "Phase", "finetune", "plan_phases"]
