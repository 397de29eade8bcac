"""Training: the typed config (more — train(config, run_dir) — arrives with issue 5)."""

from resnetkit.training.config import Config, load_config, save_config

__all__ = ["Config", "load_config", "save_config"]
