"""The audit's finders on vectors made to have (and not have) what each finder looks for."""

import numpy as np

from core.audit import findings


def clusters(n_per: int, k: int, dims: int = 32, seed: int = 0, spread: float = 0.3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dims)) * 3
    labels = np.repeat(np.arange(k), n_per)
    return centres[labels] + rng.normal(scale=spread, size=(len(labels), dims)), labels


def test_flipped_labels_are_found_with_their_true_class_and_clean_ones_are_not():
    x, truth = clusters(40, 3)
    given = truth.copy()
    flipped = [3, 50, 100]
    given[flipped] = (truth[flipped] + 1) % 3
    probs = findings.out_of_fold_probs(findings.normalise(x), given, 3, folds=5, seed=0)
    assert probs.shape == (120, 3) and np.allclose(probs.sum(axis=1), 1)
    issues = findings.label_issues(given, probs)
    assert sorted(issues.rows.tolist()) == flipped
    assert [int(issues.suggested[issues.rows.tolist().index(r)]) for r in flipped] == truth[flipped].tolist()
    assert np.all(np.diff(issues.scores) <= 0)  # most suspicious first


def test_an_ambiguous_image_the_model_agrees_with_is_not_an_issue():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.85, 0.15], [0.1, 0.9], [0.2, 0.8], [0.51, 0.49]])
    # Image 5 reaches class 0's threshold (0.85)? no: 0.51 < 0.85, and class 1's (0.73)? no: not confident
    assert findings.label_issues(labels, probs).rows.tolist() == []
    probs[5] = [0.9, 0.1]  # now confidently class 0
    found = findings.label_issues(labels, probs)
    assert found.rows.tolist() == [5] and found.suggested.tolist() == [0] and found.scores[0] == 0.9


def test_classes_too_small_to_hold_out_and_unlabelled_rows_are_left_out():
    x, labels = clusters(10, 2)
    labels = np.concatenate([labels, [2, -1]])  # a class of one image, and an unlabelled image
    x = np.concatenate([x, x[:2] + 5])
    probs = findings.out_of_fold_probs(findings.normalise(x), labels, 3, folds=5, seed=0)
    assert np.isnan(probs[-2:]).all() and not np.isnan(probs[:-2]).any()
    assert findings.label_issues(labels, probs).rows.tolist() == []
    one_class = findings.out_of_fold_probs(x[:10], np.zeros(10, dtype=int), 1, folds=5, seed=0)
    assert np.isnan(one_class).all()


def test_near_duplicates_are_paired_and_distinct_images_are_not():
    x, _ = clusters(30, 3, dims=64, spread=2.0)
    rng = np.random.default_rng(1)
    copies = x[[4, 40]] + rng.normal(scale=0.02, size=(2, x.shape[1]))  # a resized or re-saved copy
    xn = findings.normalise(np.concatenate([x, copies]))
    pairs = findings.near_duplicates(xn, 0.95, block=16)  # small blocks: pairs across blocks are found too
    assert [(i, j) for i, j, _ in pairs] == [(4, 90), (40, 91)] or [(i, j) for i, j, _ in pairs] == [(40, 91), (4, 90)]
    assert all(s >= 0.95 for *_, s in pairs)
    assert findings.near_duplicates(findings.normalise(x), 0.95) == []


def test_an_image_of_another_domain_ranks_first_among_outliers_and_a_typical_image_is_not_one():
    x, labels = clusters(50, 3, spread=1.0)
    rng = np.random.default_rng(2)
    domain = np.abs(rng.normal(size=x.shape[1])) * 4  # what every photo of the domain shares
    stranger = rng.normal(size=(2, x.shape[1])) * 3  # photos of something else: without it
    x = x + domain
    rows, scores = findings.outliers(findings.unit(np.concatenate([x, stranger])), np.concatenate([labels, [0, -1]]))
    assert set(rows[:2].tolist()) == {150, 151} and np.all(np.diff(scores) <= 0)
    assert scores[1] > 10 * scores[2]  # far beyond the farthest photo of the domain
    typical = np.argmin(np.linalg.norm(x - x[labels == 0].mean(axis=0), axis=1))
    in_domain, _ = findings.outliers(findings.unit(x), labels)
    assert typical not in in_domain and len(in_domain) <= 0.03 * len(x)  # only a thin tail, if any


def test_the_map_has_a_point_per_image_and_is_the_same_each_time():
    x, _ = clusters(20, 3)
    xn = findings.normalise(x)
    a, b = findings.project(xn, 0), findings.project(xn, 0)
    assert a.shape == (60, 2) and np.allclose(a, b)
    assert findings.project(xn[:2], 0).shape == (2, 2) and findings.project(xn[:5], 0).shape == (5, 2)
