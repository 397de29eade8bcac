"""Semantic segmentation on any zoo backbone: the heads (``heads.py``), the model
(``model.py``: ``Segmenter``, ``create_segmenter``, ``list_segmenters``) and their layers."""
