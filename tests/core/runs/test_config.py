"""TrainConfig: every setting checked in one place, with the field named in the message."""

import json
from dataclasses import fields

import pytest

from core.errors import ConfigError
from core.i18n import tr
from core.runs.config import TrainConfig


def test_defaults_are_valid_and_round_trip():
    config = TrainConfig(dataset="pets")
    assert TrainConfig.from_dict({**config.to_dict(), "unknown_future_field": 1}) == config
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_every_setting_has_a_label_and_help_in_both_languages():
    for f in fields(TrainConfig):
        for key in (f"setting.{f.name}", f"help.{f.name}"):
            assert tr(key, "en") != key and tr(key, "zh") != key and tr(key, "zh") != tr(key, "en"), key


def test_declared_ranges_and_choices_are_enforced_for_every_field():
    """The checks come from the fields' metadata: one value past each bound, one unknown choice."""
    checked = 0
    for f in TrainConfig.user_fields():
        meta = f.metadata
        bad = []
        if meta["choices"] is not None:
            bad.append("no-such-choice")
        if meta["low"] is not None:
            kind = type(f.default)
            bad += [kind(meta["low"]) - (1 if kind is int else meta["low"] or 1e-9), kind(meta["high"]) * 2 + 1]
        for value in bad:
            with pytest.raises(ConfigError) as caught:
                TrainConfig(dataset="pets", **{f.name: value})
            assert f.name in caught.value.message("en"), (f.name, value)
            checked += 1
    assert checked > 30


@pytest.mark.parametrize(
    "overrides,named",
    [
        ({"batch_size": -1}, "batch_size"),  # 0 is auto
        ({"lr": 0.0}, "lr"),
        ({"dropout": 0.95}, "dropout"),
        ({"unfreeze": "top"}, "unfreeze"),
        ({"augment": "wild"}, "augment"),
        ({"image_size": 16}, "image_size"),
        ({"head_epochs": 0, "fine_tune_epochs": 0}, "epoch"),
        ({"weights": ""}, "weights"),
        ({"feature_views": 4, "augment": "none"}, "feature_views"),
    ],
)
def test_invalid_settings_name_the_field(overrides, named):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(dataset="pets", **overrides)
    assert named in caught.value.message("en") and caught.value.message("zh") != caught.value.message("en")


def test_a_weights_file_is_checked_when_a_run_starts_not_when_a_stored_config_is_read(tmp_path):
    path = tmp_path / "base.weights.h5"
    path.write_bytes(b"x")
    config = TrainConfig(dataset="pets", weights=str(path))
    config.check_files()  # here: fine
    path.unlink()
    stored = TrainConfig.from_dict(config.to_dict())  # a run listed after its file moved: still readable
    with pytest.raises(ConfigError) as caught:
        stored.check_files()
    assert str(path) in caught.value.message("en") and str(path) in caught.value.message("zh")
    assert TrainConfig(dataset="pets", feature_views=4, augment="light").feature_views == 4


def test_the_input_size_is_the_users_or_the_backbones_default():
    assert TrainConfig(dataset="pets", backbone="inception_v3").size == 299
    assert TrainConfig(dataset="pets", backbone="efficientnet_b1").size == 240
    assert TrainConfig(dataset="pets", backbone="efficientnet_b1", image_size=96).size == 96
