"""What the model and the labeled set look like across rounds (paper 002, Figs. 6-8).

Each figure takes a sequence of :class:`RoundRecord` (one per round: the model
trained that round, the rows it was trained on, the rows it chose next) and the
data the indices refer to. A fitted :class:`skal.callbacks.RoundRecorder` (from
``ActiveLearner(callbacks=[RoundRecorder(...)])``, then ``learner.callbacks_``)
can be passed instead of the sequence: its recorded probabilities and features
are used when they were recorded on the ``X`` given to the figure (checked by
fingerprint), so no model needs to be kept or run again.

- :func:`plot_feature_embeddings`: t-SNE of the penultimate features (Fig. 6);
- :func:`plot_confidence_histograms`: max-probability of labeled and unlabeled
  rows (Fig. 7);
- :func:`plot_per_class_accuracy`: test accuracy of each class (Fig. 8);
- :func:`plot_class_balance`: the class counts of the labeled set.
"""

from dataclasses import replace

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.exceptions import NotFittedError
from sklearn.manifold import TSNE
from sklearn.metrics import confusion_matrix
from sklearn.utils import check_random_state

from .. import embeddings
from .._fingerprints import pool_fingerprint
from .._validation import check_fitted_estimator, check_pool
from ..callbacks import RoundRecord, RoundRecorder
from ._common import (
    LABELED_COLOR,
    POOL_COLOR,
    QUERIED_COLOR,
    check_indices,
    class_colors,
    hide_ticks,
    panel_grid,
)


def _records(rounds, X=None, need=()):
    """Records from a sequence of RoundRecord or a fitted RoundRecorder.

    ``need`` names the arrays a figure reads on ``X`` (``"proba"``,
    ``"features"``); a record without them must hold a fitted estimator.
    Arrays a recorder recorded on rows other than ``X`` are ignored.
    """
    if isinstance(rounds, RoundRecorder):
        rounds = _recorder_records(rounds, X, need)
    rounds = list(rounds)
    if not rounds or not all(isinstance(r, RoundRecord) for r in rounds):
        raise TypeError(
            "rounds must be a non-empty sequence of RoundRecord(round, estimator, "
            "labeled, queried) or a fitted skal.callbacks.RoundRecorder."
        )
    for record in rounds:
        arrays = [getattr(record, name) for name in need]
        if any(a is None for a in arrays):
            if record.estimator is None:
                raise ValueError(
                    f"Round {record.round} holds no model and no recorded "
                    f"{' or '.join(need)} on these rows: record them "
                    f"(RoundRecorder(X=..., {need[0]}=True)) or keep the models "
                    f"(RoundRecorder(keep_estimators=True))."
                )
            check_fitted_estimator(
                record.estimator, name=f"estimator of round {record.round}"
            )
        elif X is not None and any(a.shape[0] != X.shape[0] for a in arrays):
            raise ValueError(
                f"Round {record.round} has {' and '.join(need)} for "
                f"{arrays[0].shape[0]} rows, but X has {X.shape[0]} rows; they "
                f"must be recorded on this X."
            )
    return rounds


def _recorder_records(recorder, X, need):
    if not hasattr(recorder, "rounds_"):
        raise NotFittedError(
            "This RoundRecorder has recorded nothing: give it to "
            "ActiveLearner(callbacks=[...]) and pass learner.callbacks_[i] (the "
            "fitted clone) after fit."
        )
    records = recorder.records_
    if X is None:  # the figure reads rows of the fitted pool
        recorded_here = recorder.X is None
    else:
        recorded_here = (
            recorder.fingerprint_ is not None
            and pool_fingerprint(X) == recorder.fingerprint_
        )
    if need and not recorded_here:
        records = [replace(r, proba=None, features=None, classes=None) for r in records]
    return records


def _check_rounds(rounds, n_samples, X=None, need=()):
    checked = []
    for record in _records(rounds, X, need):
        labeled = check_indices(
            record.labeled, n_samples, f"round {record.round} labeled"
        )
        queried = check_indices(
            record.queried, n_samples, f"round {record.round} queried"
        )
        if np.intersect1d(labeled, queried).size:
            raise ValueError(
                f"Round {record.round} queried rows that were already labeled; "
                f"queried must be rows chosen from the unlabeled pool."
            )
        checked.append(replace(record, labeled=labeled, queried=queried))
    return checked


def _round_title(record):
    return f"round {record.round} ({len(record.labeled)} labeled)"


# ------------------------------------------------------------- t-SNE (Fig. 6)
def plot_feature_embeddings(
    rounds,
    X,
    y=None,
    *,
    max_points=2000,
    perplexity=30.0,
    random_state=0,
    chunk_size=None,
):
    """t-SNE of the penultimate features at chosen rounds (paper 002, Figure 6).

    Per round, the model's features (:func:`skal.embeddings.forward_pass`) of a
    uniform subsample of ``X`` plus every row queried that round are embedded
    with :class:`sklearn.manifold.TSNE`. Unlabeled rows are small dots (colored
    by class when ``y`` is given), labeled rows black-edged dots, newly queried
    rows red crosses.

    Parameters
    ----------
    rounds : sequence of RoundRecord, or RoundRecorder
        One panel each; indices refer to rows of ``X``. Recorded features on
        ``X`` are used instead of the estimator.
    X : array-like or sparse matrix of shape (n_samples, ...)
        Labeled and unlabeled rows together.
    y : array-like of shape (n_samples,), default=None
        True classes, for coloring.
    max_points : int, default=2000
        Rows drawn per panel besides the queried ones (t-SNE costs O(N log N)).
    perplexity : float, default=30.0
        t-SNE perplexity (lowered to ``(N - 1) / 3`` for tiny samples).
    random_state : int, RandomState instance or None, default=0
        Draws the subsample and seeds t-SNE.
    chunk_size : int, default=None
        Rows per forward chunk.

    Returns
    -------
    fig : matplotlib.figure.Figure

    References
    ----------
    LPLgrad: Optimizing Active Learning Through Gradient Norm Sample Selection and
    Auxiliary Model Training (paper 002), Figure 6.
    """
    X = check_pool(X, name="X")
    n = X.shape[0]
    rounds = _check_rounds(rounds, n, X, need=("features",))
    y = None if y is None else _check_y(y, n)
    classes = None if y is None else np.unique(y)
    rng = check_random_state(random_state)
    seed = rng.randint(np.iinfo(np.int32).max)
    fig, axes = panel_grid(len(rounds), width=4.2, height=4.2)
    for ax, record in zip(axes, rounds):
        sample = (
            np.arange(n)
            if n <= max_points
            else rng.choice(n, max_points, replace=False)
        )
        rows = np.union1d(sample, record.queried)
        if record.features is not None:
            features = record.features[rows]
        else:
            features = embeddings.forward_pass(
                record.estimator, X[rows], chunk_size=chunk_size
            ).features
        xy = TSNE(
            n_components=2,
            perplexity=min(perplexity, (len(rows) - 1) / 3),
            init="random" if hasattr(features, "toarray") else "pca",
            random_state=seed,
        ).fit_transform(features)
        status = np.zeros(n, dtype=np.int8)  # 0 unlabeled, 1 labeled, 2 queried
        status[record.labeled], status[record.queried] = 1, 2
        _draw_tsne_panel(ax, xy, status[rows], None if y is None else y[rows], classes)
        ax.set_title(_round_title(record) + f", {len(record.queried)} queried")
        hide_ticks(ax)
    _status_legend(fig, axes[0], classes)
    return fig


def _draw_tsne_panel(ax, xy, status, y, classes):
    unlabeled, labeled, queried = (status == k for k in range(3))
    if y is None:
        ax.scatter(
            *xy[unlabeled].T, s=5, color=POOL_COLOR, linewidths=0, rasterized=True
        )
        ax.scatter(*xy[labeled].T, s=14, color=LABELED_COLOR, linewidths=0)
    else:
        palette = class_colors(len(classes))
        colors = np.array([palette[i] for i in np.searchsorted(classes, y)])
        ax.scatter(
            *xy[unlabeled].T,
            s=5,
            c=colors[unlabeled],
            alpha=0.45,
            linewidths=0,
            rasterized=True,
        )
        ax.scatter(
            *xy[labeled].T,
            s=16,
            c=colors[labeled],
            edgecolors=LABELED_COLOR,
            linewidths=0.7,
        )
    ax.scatter(*xy[queried].T, s=40, zorder=4, **_queried_style(y is not None))


def _queried_style(by_class):
    """Red crosses; black ones (white-edged) when red may be a class color."""
    if by_class:
        return dict(marker="X", color="black", edgecolors="white", linewidths=0.5)
    return dict(marker="x", color=QUERIED_COLOR, linewidths=1.4)


def _queried_handle(by_class):
    style = _queried_style(by_class)
    return Line2D(
        [],
        [],
        marker=style["marker"],
        linestyle="",
        markersize=7,
        markerfacecolor=style["color"],
        markeredgecolor=style.get("edgecolors", style["color"]),
        markeredgewidth=style["linewidths"],
        label="newly queried",
    )


def _status_legend(fig, ax, classes):
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=4,
            color=POOL_COLOR,
            label="unlabeled",
        ),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=6,
            markerfacecolor="white",
            markeredgecolor=LABELED_COLOR,
            label="labeled",
        ),
        _queried_handle(classes is not None),
    ]
    if classes is not None:
        handles += [
            Line2D(
                [], [], marker="o", linestyle="", markersize=6, color=c, label=str(k)
            )
            for k, c in zip(classes, class_colors(len(classes)))
        ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 13),
        frameon=False,
        fontsize="small",
    )


# ------------------------------------------------- confidence (Fig. 7)
def plot_confidence_histograms(
    rounds, X=None, *, bins=20, normalize=True, log=False, chunk_size=None
):
    """Max-probability of labeled and unlabeled rows per round (paper 002, Fig. 7).

    Parameters
    ----------
    rounds : sequence of RoundRecord, or RoundRecorder
        One panel each; ``labeled`` rows of ``X`` form the labeled group, every
        other row the unlabeled one. Recorded probabilities on ``X`` are used
        instead of the estimator.
    X : array-like or sparse matrix of shape (n_samples, ...), default=None
        May be omitted when every round holds probabilities on the rows its
        indices refer to (``RoundRecorder(proba=True)`` on the fitted pool).
    bins : int, default=20
        Equal-width bins from ``1 / n_classes`` (the least possible maximum) to 1.
    normalize : bool, default=True
        Show each group's fraction of rows per bin, so groups of very different
        sizes compare; False shows counts as the paper does.
    log : bool, default=False
        Logarithmic value axis (shows the low-confidence tail).
    chunk_size : int, default=None
        Rows per forward chunk.

    Returns
    -------
    fig : matplotlib.figure.Figure

    References
    ----------
    LPLgrad: Optimizing Active Learning Through Gradient Norm Sample Selection and
    Auxiliary Model Training (paper 002), Figure 7.
    """
    if X is None:
        rounds = _records(rounds, need=("proba",))
        if any(r.proba is None for r in rounds):
            raise ValueError(
                "X is needed: a round holds no recorded probabilities (record them "
                "with RoundRecorder(proba=True), or pass the X the indices refer "
                "to)."
            )
        n = rounds[0].proba.shape[0]
    else:
        X = check_pool(X, name="X")
        n = X.shape[0]
    rounds = _check_rounds(rounds, n, X, need=("proba",))
    fig, axes = panel_grid(len(rounds), width=3.8, height=3.2)
    for ax, record in zip(axes, rounds):
        proba = record.proba
        if proba is None:
            proba = embeddings.predict_proba(record.estimator, X, chunk_size=chunk_size)
        confidence = proba.max(axis=1)
        edges = np.linspace(1.0 / proba.shape[1], 1.0, bins + 1)
        is_labeled = np.zeros(n, dtype=bool)
        is_labeled[record.labeled] = True
        for mask, label, color in (
            (~is_labeled, "unlabeled", "tab:blue"),
            (is_labeled, "labeled", "tab:orange"),
        ):
            values = confidence[mask]
            weights = (
                np.full(len(values), 1.0 / max(len(values), 1)) if normalize else None
            )
            ax.hist(
                values,
                bins=edges,
                weights=weights,
                histtype="stepfilled",
                alpha=0.45,
                color=color,
                edgecolor=color,
                label=f"{label} (n={len(values)}, mean {values.mean():.2f})"
                if len(values)
                else f"{label} (none)",
            )
        if log:
            ax.set_yscale("log")
        ax.set_title(_round_title(record))
        ax.set_xlabel("max class probability")
        ax.set_ylabel("fraction of the group" if normalize else "count")
        ax.legend(frameon=False, fontsize="small", loc="upper left")
    return fig


# ------------------------------------------------- per-class accuracy (Fig. 8)
def plot_per_class_accuracy(rounds, X_test, y_test, *, class_names=None):
    """Test accuracy of every class at every round (paper 002, Figure 8).

    A heat map, classes down, rounds across; each cell is the fraction of that
    class's test rows predicted correctly (its recall). Column labels carry the
    overall accuracy.

    Parameters
    ----------
    rounds : sequence of RoundRecord, or RoundRecorder
        Only ``round`` and ``estimator`` (or probabilities recorded on
        ``X_test``, e.g. by ``RoundRecorder(X=X_test, proba=True)``) are read.
    X_test : array-like or sparse matrix of shape (n_test, ...)
    y_test : array-like of shape (n_test,)
    class_names : sequence of str, default=None
        Names of the classes in sorted label order.

    Returns
    -------
    fig : matplotlib.figure.Figure

    References
    ----------
    LPLgrad: Optimizing Active Learning Through Gradient Norm Sample Selection and
    Auxiliary Model Training (paper 002), Figure 8.
    """
    X_test = check_pool(X_test, name="X_test")
    y_test = _check_y(y_test, X_test.shape[0])
    rounds = _records(rounds, X_test, need=("proba",))
    classes = np.unique(y_test)
    table, overall = [], []
    for record in rounds:
        if record.proba is not None:
            predicted = _labels_of(record)
        else:
            predicted = record.estimator.predict(X_test)
        matrix = confusion_matrix(y_test, predicted, labels=classes)
        table.append(np.diag(matrix) / matrix.sum(axis=1))
        overall.append(np.mean(predicted == y_test))
    columns = [f"R{r.round}\nacc {a:.2f}" for r, a in zip(rounds, overall)]
    return _heatmap(
        np.array(table).T,
        rows=_names(classes, class_names),
        columns=columns,
        title="Per-class test accuracy (recall)",
        colorbar_label="accuracy of the class",
        cmap="viridis",
        vmin=0.0,
        vmax=1.0,
        fmt=lambda v: f"{100 * v:.0f}",
    )


def plot_class_balance(rounds, y, *, classes=None, class_names=None):
    """Class counts of the labeled set at every round.

    A heat map, classes down, rounds across: each cell shows how many labeled
    rows the class has, colored by its share of the labeled set; column labels
    carry the labeled-set size and the largest/smallest class ratio.

    Parameters
    ----------
    rounds : sequence of RoundRecord, or RoundRecorder
        ``labeled`` indices refer to ``y``.
    y : array-like of shape (n_samples,)
        True classes of every row (labeled and unlabeled).
    classes : array-like, default=None
        Classes to list (default: those in ``y``).
    class_names : sequence of str, default=None
        Names of ``classes`` in sorted order.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    y = _check_y(y, None)
    rounds = _check_rounds(rounds, len(y))
    classes = np.unique(y) if classes is None else np.unique(np.asarray(classes))
    counts = np.array([[np.sum(y[r.labeled] == c) for c in classes] for r in rounds]).T
    shares = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)
    columns = [
        f"R{r.round}\nn={len(r.labeled)}\nmax/min {_ratio(col)}"
        for r, col in zip(rounds, counts.T)
    ]
    fig = _heatmap(
        shares,
        rows=_names(classes, class_names),
        columns=columns,
        title="Labeled set per class (count; color = share)",
        colorbar_label="share of the labeled set",
        cmap="Blues",
        vmin=0.0,
        vmax=max(float(shares.max()), 1e-12),
        fmt=None,
        annotations=counts,
    )
    return fig


def _ratio(counts):
    smallest = counts.min()
    return "inf" if smallest == 0 else f"{counts.max() / smallest:.1f}"


def _labels_of(record):
    """Predicted labels from recorded probabilities (argmax, as ``predict``)."""
    if record.classes is None:
        raise ValueError(
            f"Round {record.round} has probabilities but no classes: give "
            f"RoundRecord(..., classes=model.classes_)."
        )
    return np.asarray(record.classes)[np.argmax(record.proba, axis=1)]


def _check_y(y, n):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}.")
    if n is not None and len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)} labels.")
    return y


def _names(classes, class_names):
    if class_names is None:
        return [str(c) for c in classes]
    if len(class_names) != len(classes):
        raise ValueError(
            f"class_names has {len(class_names)} names for {len(classes)} classes."
        )
    return [str(c) for c in class_names]


def _heatmap(
    values,
    *,
    rows,
    columns,
    title,
    colorbar_label,
    cmap,
    vmin,
    vmax,
    fmt,
    annotations=None,
):
    n_rows, n_cols = values.shape
    fig = Figure(
        figsize=(1.6 + 0.85 * n_cols + 1.2, 1.3 + 0.32 * n_rows + 0.6),
        layout="constrained",
    )
    ax = fig.subplots()
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(n_cols), columns, fontsize="small")
    ax.set_yticks(range(n_rows), rows, fontsize="small")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=colorbar_label, shrink=0.8)
    texts = annotations if annotations is not None else values
    if n_rows * n_cols <= 600:
        for i in range(n_rows):
            for j in range(n_cols):
                text = str(texts[i, j]) if fmt is None else fmt(texts[i, j])
                # Blues is dark at high values, viridis at low ones.
                high = (values[i, j] - vmin) / max(vmax - vmin, 1e-12) > 0.55
                white = high if cmap == "Blues" else not high
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize="x-small",
                    color="white" if white else "black",
                )
    return fig
