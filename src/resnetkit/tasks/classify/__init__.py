"""Image classification: labels in, class probabilities out (the first task on the seam)."""
