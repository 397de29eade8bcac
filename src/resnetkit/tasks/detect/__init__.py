"""Object detection on any zoo backbone: RetinaNet over a feature pyramid (``model.py``:
``Detector``), its anchors (``anchors.py``) and box coding (``boxes.py``)."""
