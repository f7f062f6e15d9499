"""TrainConfig: every setting checked in one place, with the field named in the message."""

import pytest

from core.errors import ConfigError
from core.training.config import DEFAULTS, TrainConfig


def test_defaults_are_valid_and_listed_once():
    config = TrainConfig(dataset="pets")
    assert {k: v for k, v in config.to_dict().items() if k != "dataset"} == DEFAULTS
    assert TrainConfig.from_dict({**config.to_dict(), "unknown_future_field": 1}) == config


@pytest.mark.parametrize(
    "overrides,named",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"dropout": 0.95}, "dropout"),
        ({"unfreeze": "top"}, "unfreeze"),
        ({"augment": "wild"}, "augment"),
        ({"image_size": 16}, "image_size"),
        ({"head_epochs": 0, "fine_tune_epochs": 0}, "epoch"),
        ({"weights": ""}, "weights"),
        ({"weights": "/no/such/file.weights.h5"}, "/no/such/file.weights.h5"),
        ({"feature_views": 4, "augment": "none"}, "feature_views"),
    ],
)
def test_invalid_settings_name_the_field(overrides, named):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(dataset="pets", **overrides)
    assert named in caught.value.message("en") and caught.value.message("zh") != caught.value.message("en")


def test_a_weights_file_that_exists_is_accepted(tmp_path):
    path = tmp_path / "base.weights.h5"
    path.write_bytes(b"x")
    assert TrainConfig(dataset="pets", weights=str(path)).weights == str(path)
    assert TrainConfig(dataset="pets", feature_views=4, augment="light").feature_views == 4
