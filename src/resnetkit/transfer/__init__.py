"""Transfer learning: fine-tune a pretrained ResNet on a new task (see finetune.py)."""

from resnetkit.transfer.finetune import PRESET, Source, finetune, finetune_config, resolve_source

__all__ = ["PRESET", "Source", "finetune", "finetune_config", "resolve_source"]
