"""Expected-output regression: seeded logits of the representative models, stored as .npz.

Weights come from ``helpers.fill_weights`` (a function of each weight's name), so any change
to what a model computes — padding, strides, layer order inside a block, BN constants —
changes the logits. ``tests/harness.py`` compares each case of ``MODELS`` with its file (in
``tests/test_models.py::test_representative_model``). After an intended change, regenerate
every file with ``pytest tests/test_expected_outputs.py --regen-expected`` and commit them.
"""

import keras
from harness import EXPECTED, MODELS, build, logits, write_expected


def test_every_stored_file_belongs_to_a_case(regen_expected):
    if regen_expected:  # regeneration mode: write every case's own file, slow ones too
        for case in MODELS:
            if case.expected_file is not None and case.expected_file.stem == case.id:
                write_expected(case, logits(build(case), case))
                keras.backend.clear_session()
    wanted = {case.expected_file.name for case in MODELS if case.expected_file is not None}
    stored = {path.name for path in EXPECTED.glob("*.npz")}
    assert stored == wanted, f"no case for {stored - wanted}; no file for {wanted - stored}"
