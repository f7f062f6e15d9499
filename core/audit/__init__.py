"""The data audit: which labels are probably wrong, which images are near-copies (a leak between splits,
or a conflict of labels), which images belong to no class, and a map of the whole dataset.

``config`` (the settings), ``findings`` (the finders: numpy and scikit-learn on feature vectors),
``jobs`` (the audit as a job: vectors from a backbone, then the finders), ``store`` (what an audit found,
stored in the workspace, with what the user has since decided; no TensorFlow, for the Label page and the
CLI). Fixes go through ``core.datasets.editing`` like every other edit.
"""
