"""Cluster speaker embeddings into speakers, choosing the count when it is not given."""

from __future__ import annotations

import numpy as np


def _affinity(embeddings: np.ndarray) -> np.ndarray:
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-8)
    return np.clip(unit @ unit.T, -1.0, 1.0)


def _kmeans(points: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=seed, max_iter=iterations).fit_predict(points)


def spectral_labels(
    embeddings: np.ndarray, num: int | None, min_speakers: int, max_speakers: int, min_links: int = 2
) -> np.ndarray:
    """Spectral clustering on cosine affinities; the count is the largest eigengap in [min, max].

    The affinity is refined as in LSTM d-vector diarization (row-wise pruning of weak links, then
    symmetrised), which makes the eigengap a reliable count estimate for short conversations.
    `min_links` is the fewest links a row keeps: callers whose windows overlap in time pass more than
    the number of overlapping neighbours (see the pruning below).
    """
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, int)
    max_speakers = min(max_speakers, n)
    min_speakers = max(1, min(min_speakers, max_speakers))
    if num is not None:
        num = min(num, n)
    if n < 3 or num == 1 or max_speakers == 1:
        return np.zeros(n, int)
    affinity = (_affinity(embeddings) + 1.0) / 2.0
    # Keep each row's strongest links only, so two speakers' similar-sounding moments do not merge them.
    # Windows that share audio are always each other's strongest links; a row that kept only those would
    # make a chain of time-local neighbourhoods, which the eigengap reads as speakers (a 4 s sentence in
    # one voice came out as three). Hence the floor.
    keep = min(n, max(min_links, int(np.ceil(n * 0.3))))
    pruned = np.zeros_like(affinity)
    order = np.argsort(-affinity, axis=1)[:, :keep]
    rows = np.arange(n)[:, None]
    pruned[rows, order] = affinity[rows, order]
    pruned = np.maximum(pruned, pruned.T)
    degree = pruned.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-8))
    laplacian = np.eye(n) - inv_sqrt[:, None] * pruned * inv_sqrt[None, :]
    eigenvalues, eigenvectors = np.linalg.eigh(laplacian)
    if num is None:
        # gap k = λ(k+1) - λ(k); k = 1 competes too, so one voice is not split in two.
        gaps = np.diff(eigenvalues[: max_speakers + 1])
        num = max(range(min_speakers, max_speakers + 1), key=lambda k: gaps[k - 1] if k - 1 < len(gaps) else -1.0)
    if num <= 1:
        return np.zeros(n, int)
    vectors = eigenvectors[:, :num]
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8)
    return _kmeans(vectors, num)
