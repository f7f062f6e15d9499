"""The audit's finders, on one feature vector per image (numpy and scikit-learn; no TensorFlow).

- :func:`out_of_fold_probs`: class probabilities for every labelled image from a logistic regression
  that never saw it (K folds), on the backbone's features: seconds, not a training run.
- :func:`label_issues`: confident learning (Northcutt, Jiang & Chuang, JAIR 2021), the rule
  ``cleanlab.filter.find_label_issues(..., filter_by="confident_learning",
  return_indices_ranked_by="self_confidence")`` applies (cleanlab is AGPL-3.0: the rule is written here
  and checked against it in a development-only test, ``tests/core/audit/test_against_cleanlab.py``).
- :func:`near_duplicates`: pairs whose features are nearly the same direction (cosine similarity of
  centred, normalised vectors), found block by block so 10,000 images never need a 10,000² matrix.
- :func:`outliers`: images far from every class: low similarity to the nearest class centroid (of the
  uncentred features), flagged when far above the dataset's usual distance (a robust z-score).
- :func:`project`: a 2-D map (PCA to 50 dimensions, then t-SNE), for the Label page's scatter plot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Confident learning's constants, as cleanlab has them (cleanlab.internal.constants).
_FUZZ = 1e-6
_THRESHOLD_FLOOR = 2 * _FUZZ

# The regression's L2 strength on standardised features: measured on clothing-small's MobileNetV2 x0.35
# features, out-of-fold accuracy 0.81 at C 0.01-0.1 (0.80 at 1.0; PCA to 64-512 dimensions first lost
# 0.05-0.2), so the middle of that plateau.
LOGISTIC_C = 0.05
MAX_PAIRS = 5000  # near-duplicate pairs kept (the most similar)
OUTLIER_Z = 3.0  # robust z-score of the distance to the nearest centroid above which an image is flagged
MAX_OUTLIERS = 500
MAP_PCA = 50


def unit(x: np.ndarray) -> np.ndarray:
    """Vectors scaled to length 1: cosine similarity becomes a dot product."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def normalise(x: np.ndarray) -> np.ndarray:
    """Vectors centred on the dataset's mean, then of length 1: the direction every image of the dataset
    shares (ReLU features are all positive, and photos of one domain share much more) no longer makes
    every pair similar. For comparing images of the dataset with each other (labels, copies, the map);
    outliers are measured without the centring, since that shared direction is what an image of another
    domain lacks (measured: BENCHMARKS.md, "Data audit")."""
    x = np.asarray(x, dtype=np.float32)
    return unit(x - x.mean(axis=0, keepdims=True))


def out_of_fold_probs(x: np.ndarray, labels: np.ndarray, n_classes: int, folds: int, seed: int) -> np.ndarray:
    """``(n, n_classes)`` probabilities, each row from a model trained on the other folds. Rows of classes
    with fewer than two images, and unlabelled rows (label -1), are NaN: nothing to hold out against.
    The folds are stratified; with a class smaller than ``folds``, there are as many folds as its size."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    labels = np.asarray(labels)
    counts = np.bincount(labels[labels >= 0], minlength=n_classes)
    kept = (labels >= 0) & (counts[np.maximum(labels, 0)] >= 2)
    out = np.full((len(labels), n_classes), np.nan)
    present = np.flatnonzero(counts >= 2)
    if len(present) < 2:
        return out
    z = x[kept]
    z = (z - z.mean(axis=0)) / np.maximum(z.std(axis=0), 1e-6)  # each feature on one scale, for one C
    y = np.searchsorted(present, labels[kept])
    cv = StratifiedKFold(min(folds, int(counts[present].min())), shuffle=True, random_state=seed)
    model = LogisticRegression(C=LOGISTIC_C, max_iter=2000)
    probs = cross_val_predict(model, z, y, cv=cv, method="predict_proba")
    rows = np.flatnonzero(kept)
    out[np.ix_(rows, present)] = probs
    out[rows] = np.nan_to_num(out[rows])  # absent classes: probability 0
    return out


@dataclass(frozen=True)
class LabelIssues:
    rows: np.ndarray  # indices into the labels, most suspicious first
    suggested: np.ndarray  # the class each flagged row most likely is
    scores: np.ndarray  # 1 - the probability of the given label: higher is more suspicious


def label_issues(labels: np.ndarray, probs: np.ndarray) -> LabelIssues:
    """Rows whose given label is probably wrong, by confident learning: a row is counted, in the confident
    joint, under the class whose probability reaches that class's threshold (the mean probability of the
    class over the rows labelled with it; the largest when several do); a row counted under another class
    than its label is an issue, unless its label is also the model's top prediction. Ranked by the
    probability of the given label (self-confidence), lowest first. Rows with NaN probabilities (see
    :func:`out_of_fold_probs`) are never flagged."""
    labels = np.asarray(labels)
    valid = ~np.isnan(probs).any(axis=1)
    rows = np.flatnonzero(valid)
    p, y = probs[valid], labels[valid]
    k = p.shape[1]
    means = [p[y == c, c].mean() if (y == c).any() else 2.0 for c in range(k)]
    thresholds = np.clip(np.asarray(means), _THRESHOLD_FLOOR, None)
    confident = p >= thresholds - _FUZZ
    n_confident = confident.sum(axis=1)
    guess = np.where(n_confident > 1, p.argmax(axis=1), confident.argmax(axis=1))
    flagged = (n_confident > 0) & (guess != y)
    nudged = p.copy()
    nudged[np.arange(len(y)), y] += _FUZZ
    flagged &= nudged.argmax(axis=1) != y
    self_confidence = p[np.arange(len(y)), y]
    picked = np.flatnonzero(flagged)
    order = picked[np.argsort(self_confidence[picked], kind="stable")]
    return LabelIssues(rows[order], guess[order], 1.0 - self_confidence[order])


def near_duplicates(x: np.ndarray, threshold: float, block: int = 2048) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, similarity)``, ``i < j``, of rows of the normalised ``x`` at or above ``threshold``,
    most similar first (at most :data:`MAX_PAIRS`)."""
    pairs: list[tuple[int, int, float]] = []
    n = len(x)
    for start in range(0, n, block):
        sims = x[start : start + block] @ x[start:].T  # this block against itself and every later row
        local_i, local_j = np.nonzero(sims >= threshold)
        i, j = local_i + start, local_j + start
        keep = i < j
        pairs.extend(zip(i[keep].tolist(), j[keep].tolist(), sims[local_i[keep], local_j[keep]].tolist(), strict=True))
        if len(pairs) > 4 * MAX_PAIRS:  # a dataset of copies: keep the memory bounded
            pairs = sorted(pairs, key=lambda p: -p[2])[:MAX_PAIRS]
    return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))[:MAX_PAIRS]


def outliers(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the unit vectors ``x`` (:func:`unit`) far from every class, most distant first, with their
    distance (1 - the cosine similarity to
    the nearest class centroid; the dataset's centroid when nothing is labelled). Flagged when the
    distance's robust z-score (median and MAD) is above :data:`OUTLIER_Z`."""
    labels = np.asarray(labels)
    classes = np.unique(labels[labels >= 0])
    if len(classes):
        centroids = np.stack([x[labels == c].mean(axis=0) for c in classes])
    else:
        centroids = x.mean(axis=0, keepdims=True)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    distance = 1.0 - (x @ centroids.T).max(axis=1)
    median = np.median(distance)
    spread = 1.4826 * np.median(np.abs(distance - median)) or 1e-12
    z = (distance - median) / spread
    picked = np.flatnonzero(z > OUTLIER_Z)
    order = picked[np.argsort(-distance[picked], kind="stable")][:MAX_OUTLIERS]
    return order, distance[order]


def project(x: np.ndarray, seed: int) -> np.ndarray:
    """``(n, 2)`` coordinates: PCA to 50 dimensions, then t-SNE (PCA-initialised, so runs agree). t-SNE
    was measured against UMAP at 10,000 images (BENCHMARKS.md: about as fast on two cores, without a
    200 MB compiler dependency); fewer than 10 images get the PCA's first two axes."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = len(x)
    if n < 3:
        return np.zeros((n, 2), dtype=np.float32)
    reduced = PCA(min(MAP_PCA, n - 1, x.shape[1]), random_state=seed).fit_transform(x)
    if n < 10:
        return reduced[:, :2].astype(np.float32)
    tsne = TSNE(2, init="pca", perplexity=min(30.0, (n - 1) / 3), random_state=seed)
    return tsne.fit_transform(reduced).astype(np.float32)
