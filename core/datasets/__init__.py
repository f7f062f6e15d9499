"""Datasets: reading archives safely, detecting their layout, importing, splitting, the quality report,
image normalisation and the queries the pages make. Nothing here imports TensorFlow."""
