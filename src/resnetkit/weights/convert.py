"""``resnetkit weights import``: weights from any supported file into a resnetkit artifact.

The output format follows the file name: ``.keras`` (the whole model, reloadable with
``safe_mode=True``), ``.weights.h5`` (Keras weights only) or ``.safetensors`` (a
torchvision/timm-format state dict that PyTorch loads with ``strict=True``). The file
appears only once it is complete.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.numpy import save_file

from resnetkit.files import atomic_path
from resnetkit.weights.torch_state import from_keras

OUTPUTS = (".keras", ".weights.h5", ".safetensors")


def save_artifact(model, out: str | Path) -> Path:
    """Write ``model`` to ``out`` atomically, in the format its name asks for."""
    out = Path(out)
    if not out.name.endswith(OUTPUTS):
        raise ValueError(f"--out {out}: the name must end with one of {', '.join(OUTPUTS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Keras' savers refuse a name without their own suffix: the temporary file keeps it.
    suffix = next(s for s in OUTPUTS if out.name.endswith(s))
    with atomic_path(out, suffix=suffix) as tmp:
        if suffix == ".keras":
            model.save(tmp)
        elif suffix == ".weights.h5":
            model.save_weights(tmp)
        else:
            save_file(from_keras(model), tmp, metadata={"format": "pt", "arch": model.variant.name})
    return out
