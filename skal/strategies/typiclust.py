"""TypiClust: the most typical point of each uncovered cluster (low budgets)."""

import warnings
from numbers import Integral

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval

from .._arrays import stack_rows
from ._registry import register
from ._representation import SPACE_CONSTRAINTS, SpaceStrategy


@register("typiclust")
class TypiClust(SpaceStrategy):
    """Typical points of the largest uncovered clusters (``typiclust``).

    Clusters the labeled and pool points together by k-means into
    ``min(n_labeled + n, max_clusters)`` clusters. Each of the ``n`` picks takes
    the cluster with the fewest labeled or picked points (the largest among
    ties; clusters of at most ``min_cluster_size`` points are skipped) and, in
    it, the pool point of highest typicality, the inverse of its mean squared
    distance to its ``n_neighbors`` nearest neighbours within the cluster
    (``1 / (mean + 1e-5)``, as in the reference code, whose neighbour search
    returns squared distances). Designed for the first labels, where a model is
    too weak to rank by uncertainty: with ``space="input"`` or an embedding it
    needs no model at all.

    Neighbours are found by scikit-learn's ``NearestNeighbors`` inside each
    chosen cluster only (chunked, memory linear in the cluster's size); the
    peers' implementations build the N x N distance matrix. Cost: one k-means
    over N + n_labeled points plus a neighbour search in each of <= n clusters.

    Parameters
    ----------
    space : {"features", "input"}, transformer or callable, default="features"
        Where distances are measured: the network's penultimate features, the
        raw input, a fitted transformer (``transform``) or a function ``X ->
        embedding`` (e.g. a self-supervised encoder).
    n_neighbors : int, default=20
        Neighbours of the typicality (capped at half the cluster's size).
    max_clusters : int, default=500
        Cap on the number of clusters.
    min_cluster_size : int, default=5
        Clusters of at most this many points are never chosen.
    random_state : int, RandomState instance or None, default=None
        Seeds k-means.

    References
    ----------
    Hacohen, G., Dekel, A. & Weinshall, D. (2022). Active Learning on a Budget:
    Opposite Strategies Suit High and Low Budgets. ICML.
    """

    _parameter_constraints = {
        "space": SPACE_CONSTRAINTS,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "max_clusters": [Interval(Integral, 1, None, closed="left")],
        "min_cluster_size": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        space="features",
        n_neighbors=20,
        max_clusters=500,
        min_cluster_size=5,
        random_state=None,
    ):
        self.space = space
        self.n_neighbors = n_neighbors
        self.max_clusters = max_clusters
        self.min_cluster_size = min_cluster_size
        self.random_state = random_state

    def _select(self, X_pool, n):
        pool = self._represent(X_pool)
        points, n_labeled = _stack_labeled(self.labeled_points_, pool)
        n_clusters = min(n_labeled + n, self.max_clusters, points.shape[0])
        clusters = cluster_points(points, n_clusters, self.random_state_)
        sizes = np.bincount(clusters, minlength=n_clusters)
        covered = np.bincount(clusters[:n_labeled], minlength=n_clusters)
        taken = np.zeros(points.shape[0], dtype=bool)
        taken[:n_labeled] = True
        eligible = sizes > self.min_cluster_size
        if not eligible.any():
            eligible = sizes > 0  # tiny pools: every cluster may be chosen
        typicality = {}
        picks = []
        while len(picks) < n:
            cluster = _least_covered_cluster(covered, sizes, eligible)
            members = np.flatnonzero(clusters == cluster)
            if cluster not in typicality:
                typicality[cluster] = cluster_typicality(
                    points[members], self.n_neighbors
                )
            scores = np.where(taken[members], -np.inf, typicality[cluster])
            if np.isinf(scores).all():  # the cluster has no pool point left
                eligible[cluster] = False
                if not eligible.any():  # only small clusters still hold pool points
                    eligible = np.bincount(clusters[~taken], minlength=n_clusters) > 0
                continue
            point = int(members[np.argmax(scores)])
            taken[point] = True
            covered[cluster] += 1
            picks.append(point - n_labeled)
        return np.asarray(picks)


def _stack_labeled(labeled, pool):
    """Labeled points first, then the pool; the number of labeled rows."""
    if labeled is None:
        return pool, 0
    return stack_rows(labeled, pool), labeled.shape[0]


def cluster_points(points, n_clusters, random_state):
    """k-means labels: ``KMeans`` up to 50 clusters, ``MiniBatchKMeans`` above
    (the reference code's choice: full k-means is slow with many clusters)."""
    seed = random_state.randint(np.iinfo(np.int32).max)
    if n_clusters <= 50:
        model = KMeans(n_clusters, n_init=1, random_state=seed)
    else:
        model = MiniBatchKMeans(n_clusters, n_init=1, random_state=seed)
    with warnings.catch_warnings():
        # Duplicate points give fewer distinct clusters: empty ones are skipped.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return model.fit_predict(points)


def cluster_typicality(points, n_neighbors):
    """``1 / (mean squared distance to the k nearest other points + 1e-5)``.

    ``k = min(n_neighbors, len(points) // 2)`` (at least 1); a one-point cluster
    gets typicality 1.
    """
    if points.shape[0] < 2:
        return np.ones(points.shape[0])
    k = max(1, min(n_neighbors, points.shape[0] // 2))
    search = NearestNeighbors(n_neighbors=k + 1).fit(points)
    distances, _ = search.kneighbors(points)
    # Column 0 is the point itself (distance 0), or a duplicate of it: either way
    # the k nearest others are the remaining columns.
    return 1 / (np.mean(distances[:, 1:] ** 2, axis=1) + 1e-5)


def _least_covered_cluster(covered, sizes, eligible):
    """Fewest labeled/picked points first, then the largest, then the lowest id."""
    candidates = np.flatnonzero(eligible)
    order = np.lexsort((candidates, -sizes[candidates], covered[candidates]))
    return int(candidates[order[0]])
