"""ProbCover: greedy coverage of the pool by balls of radius delta (low budgets)."""

from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.metrics import pairwise_distances_chunked
from sklearn.neighbors import radius_neighbors_graph
from sklearn.utils._param_validation import Interval, StrOptions

from ._registry import register
from ._representation import SPACE_CONSTRAINTS, SpaceStrategy
from .typiclust import _stack_labeled, cluster_points


@register("probcover")
class ProbCover(SpaceStrategy):
    """Maximum coverage by delta-balls, greedily (``probcover``).

    A point covers every point within distance ``delta`` of it. Points covered
    by the labeled set are removed; each pick then takes the pool point that
    covers the most still-uncovered points, and marks them covered. When every
    point is covered, the remaining picks are drawn uniformly at random (as in
    the reference code).

    The delta-ball graph is built by scikit-learn's ``radius_neighbors_graph``
    (chunked) and kept sparse: memory O(edges), linear in the pool for a radius
    at which balls hold a bounded number of points, where the peers' code forms
    the N x N distance matrix. Each pick updates the uncovered degrees from the
    neighbour lists of the newly covered points only.

    Parameters
    ----------
    delta : float or "auto", default="auto"
        Ball radius. ``"auto"`` follows the paper: the largest radius at which
        at least ``purity`` of the balls are pure, i.e. hold only points of one
        k-means cluster, with as many clusters as ``n_classes`` (see
        :func:`purest_radius`).
    purity : float, default=0.95
        Purity threshold of ``delta="auto"``.
    n_classes : int, default=None
        Clusters of the purity check (None: from the estimator, else 10).
    space : {"features", "input"}, transformer or callable, default="features"
        Where distances are measured (see :class:`~skal.strategies.TypiClust`).
    random_state : int, RandomState instance or None, default=None
        Seeds the purity clustering and the draws once all is covered.

    Attributes
    ----------
    delta_ : float
        The radius used by the last query.

    References
    ----------
    Yehuda, O., Dekel, A., Hacohen, G. & Weinshall, D. (2022). Active Learning
    Through a Covering Lens. NeurIPS.
    """

    _parameter_constraints = {
        "delta": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "purity": [Interval(Real, 0, 1, closed="both")],
        "n_classes": [Interval(Integral, 1, None, closed="left"), None],
        "space": SPACE_CONSTRAINTS,
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        delta="auto",
        purity=0.95,
        n_classes=None,
        space="features",
        random_state=None,
    ):
        self.delta = delta
        self.purity = purity
        self.n_classes = n_classes
        self.space = space
        self.random_state = random_state

    def _select(self, X_pool, n):
        pool = self._represent(X_pool)
        points, n_labeled = _stack_labeled(self.labeled_points_, pool)
        self.delta_ = (
            self._auto_delta(points) if self.delta == "auto" else float(self.delta)
        )
        graph = radius_neighbors_graph(points, self.delta_, mode="connectivity")
        graph = (graph + sparse.identity(points.shape[0], format="csr")).tocsr()
        graph.data[:] = 1  # a point covers itself
        return greedy_cover(graph, n_labeled, n, self.random_state_)

    def _auto_delta(self, points):
        n_classes = self.n_classes
        if n_classes is None:
            classes = getattr(self.estimator_, "classes_", None)
            n_classes = 10 if classes is None else len(classes)
        n_clusters = int(min(n_classes, points.shape[0]))
        clusters = cluster_points(points, n_clusters, self.random_state_)
        return purest_radius(points, clusters, self.purity, self.random_state_)


def greedy_cover(graph, n_labeled, n, random_state):
    """Greedy max coverage on a symmetric 0/1 CSR ball graph (with self-loops).

    Rows ``< n_labeled`` are labeled: what they cover is covered from the start
    and they are never picked. Returns ``n`` distinct pool indices (row -
    ``n_labeled``).
    """
    n_points = graph.shape[0]
    covered = np.zeros(n_points, dtype=bool)
    available = np.ones(n_points, dtype=bool)
    available[:n_labeled] = False
    degree = np.asarray(graph.sum(axis=1)).ravel().astype(np.int64)
    # The ball graph is symmetric: the points whose degree drops when y becomes
    # covered are y's own neighbours.
    newly = np.unique(graph[:n_labeled].indices) if n_labeled else np.array([], int)

    def cover(rows):
        covered[rows] = True
        neighbours = graph[rows].indices
        np.subtract.at(degree, neighbours, 1)

    if len(newly):
        cover(newly)
    picks = []
    while len(picks) < n:
        scores = np.where(available, degree, -1)
        best = int(np.argmax(scores))
        if scores[best] <= 0:  # everything is covered: uniform draws
            rest = np.flatnonzero(available)
            extra = random_state.choice(rest, n - len(picks), replace=False)
            picks.extend(int(i) for i in extra)
            break
        picks.append(best)
        available[best] = False
        ball = graph[best].indices
        cover(ball[~covered[ball]])
    return np.asarray(picks) - n_labeled


def purest_radius(points, clusters, purity, random_state, max_centers=5000):
    """Largest radius at which at least ``purity`` of the balls are pure.

    A ball is pure when every point within the radius shares its center's
    cluster, i.e. when the radius is below the distance from the center to the
    nearest point of another cluster. The fraction of pure balls at radius r is
    thus the fraction of those distances above r, and the largest radius with a
    fraction >= ``purity`` is their ``1 - purity`` quantile: one pass over the
    pairs instead of the paper's search over radii. Above ``max_centers`` points
    the fraction is estimated on that many random centers (the pass over the
    pairs is O(N^2 D) otherwise).
    """
    n_points = points.shape[0]
    centers = np.arange(n_points)
    if n_points > max_centers:
        centers = np.sort(random_state.choice(n_points, max_centers, replace=False))

    def nearest_other_and_farthest(chunk, start):
        own = clusters[centers[start : start + chunk.shape[0]]]
        farthest = chunk.max(axis=1)
        chunk = np.where(clusters[None, :] == own[:, None], np.inf, chunk)
        return np.stack([chunk.min(axis=1), farthest], axis=1)

    reduced = np.concatenate(
        list(
            pairwise_distances_chunked(
                points[centers], points, reduce_func=nearest_other_and_farthest
            )
        )
    )
    # At least m = ceil(purity * centers) distances must lie above the radius:
    # the radius must be below the m-th largest. Balls are closed
    # (radius_neighbors_graph keeps distances <= radius) and scikit-learn's
    # distances are rounded (~1e-8 relative): stay 1e-6 below it.
    n_centers = len(centers)
    m = int(np.ceil(purity * n_centers - 1e-9))
    if m == 0:
        return float(reduced[:, 1].max())
    ordered = np.sort(np.where(np.isfinite(reduced[:, 0]), reduced[:, 0], np.inf))
    threshold = ordered[n_centers - m]
    if not np.isfinite(threshold):  # the m-th is alone in its cluster
        return float(reduced[:, 1].max())
    return float(threshold * (1 - 1e-6))
