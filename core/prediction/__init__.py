"""Prediction: loading a run's saved model safely, and classifying new images one by one or in batches."""
