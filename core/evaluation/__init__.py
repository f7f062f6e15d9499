"""Evaluation: each run's stored predictions, the metrics computed from them, and Grad-CAM."""
