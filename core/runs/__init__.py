"""The run store: runs, their recipe (``TrainConfig``, the backbones), folders, metrics and stored predictions."""
