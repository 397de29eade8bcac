"""Training: the typed config and ``train(config, run_dir)``."""

from resnetkit.training.config import Config, load_config, save_config


def train(*args, **kwargs):
    """See ``resnetkit.training.engine.train`` (imported on first use: it loads TensorFlow)."""
    from resnetkit.training.engine import train as _train

    return _train(*args, **kwargs)


__all__ = ["Config", "load_config", "save_config", "train"]
