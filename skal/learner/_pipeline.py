"""ActiveLearningPipeline: a Pipeline ending in a learner, query/teach on raw input."""

from sklearn.pipeline import Pipeline


class ActiveLearningPipeline(Pipeline):
    """A scikit-learn ``Pipeline`` ending in an :class:`ActiveLearner`, with the
    labeling loop on raw input.

    A plain ``Pipeline([("tfidf", TfidfVectorizer()), ("al", ActiveLearner(...))])``
    trains and predicts on raw texts, but has no ``query``/``teach``, and its
    ``al__eval_set`` would reach the learner untransformed. This subclass adds
    both: :meth:`query` and :meth:`teach` take raw rows (texts) and pass them
    through the fitted preceding steps, and ``fit(..., <last step>__eval_set=
    (X_eval, y_eval))`` transforms ``X_eval`` the same way. Everything else is
    ``Pipeline`` (``GridSearchCV``, ``cross_val_score``, ``set_params``...).

    Parameters
    ----------
    steps : list of (name, transformer or estimator) tuples
        The last step must be an :class:`ActiveLearner`.
    memory, transform_input, verbose
        As in :class:`sklearn.pipeline.Pipeline`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skal import ActiveLearner, ActiveLearningPipeline
    >>> texts = ["good goal", "bad code", "great match", "buggy kernel"] * 5
    >>> labels = np.array([0, 1, 0, 1] * 5)
    >>> y = np.where(np.arange(20) < 4, labels, -1)   # 4 labeled texts
    >>> pipe = ActiveLearningPipeline([
    ...     ("tfidf", TfidfVectorizer()),
    ...     ("al", ActiveLearner(LogisticRegression(), "margin")),
    ... ]).fit(texts, y, al__eval_set=(texts, labels))
    >>> picks = pipe.query(texts, 2)                   # rows of texts to label
    >>> pipe = pipe.teach([texts[i] for i in picks], labels[picks])
    >>> len(pipe[-1].labeled_indices_)
    6
    """

    def fit(self, X, y=None, **params):
        """Fit the preceding steps, then the learner (``eval_set`` transformed).

        Parameters
        ----------
        X : iterable
            Raw training input (e.g. texts), labeled and unlabeled rows.
        y : array-like of shape (n_samples,)
            Labels, the learner's ``missing_label`` for unlabeled rows.
        **params
            ``<step>__<param>`` fit parameters, as for ``Pipeline``;
            ``<last step>__eval_set=(X_eval, y_eval)`` takes raw ``X_eval``.

        Returns
        -------
        self : object
        """
        name = self.steps[-1][0]
        eval_set = params.pop(f"{name}__eval_set", None)
        if eval_set is None:
            return super().fit(X, y, **params)
        prefix = f"{name}__"
        own = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
        others = {k: v for k, v in params.items() if not k.startswith(prefix)}
        head = self._head()
        Xt = X if head is None else head.fit_transform(X, y, **others)
        X_eval, y_eval = eval_set
        self._final_estimator.fit(
            Xt, y, eval_set=(self._transform(X_eval), y_eval), **own
        )
        return self

    def query(self, X_pool, n):
        """Rows of the raw ``X_pool`` the learner would label next.

        See :meth:`ActiveLearner.query`: given the raw rows ``fit`` saw, labeled
        rows are never proposed.

        Parameters
        ----------
        X_pool : iterable
            Raw rows (e.g. texts).
        n : int

        Returns
        -------
        indices : ndarray of shape (n,)
        """
        return self._learner().query(self._transform(X_pool), n)

    def teach(self, X_new, y_new):
        """Teach the learner labeled raw rows (see :meth:`ActiveLearner.teach`).

        Parameters
        ----------
        X_new : iterable
            Raw rows (e.g. texts).
        y_new : array-like of shape (n_new,)

        Returns
        -------
        self : object
        """
        self._learner().teach(self._transform(X_new), y_new)
        return self

    def _head(self):
        return self[:-1] if len(self.steps) > 1 else None

    def _transform(self, X):
        head = self._head()
        return X if head is None else head.transform(X)

    def _learner(self):
        learner = self._final_estimator
        if not hasattr(learner, "query") or not hasattr(learner, "teach"):
            raise TypeError(
                f"The last step of an ActiveLearningPipeline must be an "
                f"ActiveLearner, got {type(learner).__name__}."
            )
        return learner
