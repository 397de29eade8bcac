"""The explanation methods by name (TF-free: the CLI offers them as ``--method`` choices)."""

METHODS = ("gradcam", "gradcam++")
