import pytest

from core.datasets.splits import SplitConfig, assign_splits
from core.errors import ConfigError


def test_every_class_gets_its_share_and_duplicates_stay_together():
    items = [(f"h{i}", i, "a") for i in range(20)] + [(f"g{i}", 100 + i, "b") for i in range(10)]
    items.append(("h0", 999, "a"))  # a duplicate of item 0
    splits, too_small = assign_splits(items, SplitConfig())
    assert too_small == []
    a = [splits[i] for i in range(20)]
    assert (a.count("train"), a.count("val"), a.count("test")) == (14, 3, 3)
    b = [splits[100 + i] for i in range(10)]
    assert (b.count("val"), b.count("test")) == (2, 2)
    assert splits[999] == splits[0]


def test_seeded_and_reproducible():
    items = [(i, i, "a") for i in range(30)]
    assert assign_splits(items, SplitConfig(seed=7)) == assign_splits(items, SplitConfig(seed=7))
    assert assign_splits(items, SplitConfig(seed=7))[0] != assign_splits(items, SplitConfig(seed=8))[0]


def test_tiny_classes_stay_in_train_and_a_training_image_is_always_kept():
    splits, too_small = assign_splits([(1, 1, "x"), (2, 2, "x"), (3, 3, "y"), (4, 4, "y"), (5, 5, "y")], SplitConfig())
    assert too_small == ["x"] and splits[1] == splits[2] == "train"
    assert sorted(splits[i] for i in (3, 4, 5)) == ["test", "train", "val"]


@pytest.mark.parametrize(
    "kwargs", [{"train": 0.5, "val": 0.2, "test": 0.2}, {"train": 0.0, "val": 0.5, "test": 0.5}, {"val": -0.1}]
)
def test_config_is_validated(kwargs):
    with pytest.raises(ConfigError):
        SplitConfig(**kwargs)


def test_held_out_fractions_leave_train_the_exact_rest():
    assert SplitConfig.held_out(0.15, 0.15, 7) == SplitConfig(train=0.7, val=0.15, test=0.15, seed=7)
    assert SplitConfig.held_out(0.1, 0.2).train == 0.7
    with pytest.raises(ConfigError):
        SplitConfig.held_out(0.6, 0.5)
