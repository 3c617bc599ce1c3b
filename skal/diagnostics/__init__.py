"""Diagnostic figures: see what a strategy and an active-learning run do.

Each ``plot_*`` function takes fitted objects and plain arrays and returns a
:class:`matplotlib.figure.Figure` (built without ``pyplot``; save it with
``fig.savefig(path)``).

Paper 001 (gradient discrepancy):

- :func:`plot_acquisition_geometry` (section 4.1, Figure 1): one acquisition step
  of several strategies in PCA projections of the input and of the last-layer
  gradient embeddings; :func:`acquire_batches` computes the batches,
  :func:`acquisition_projections` the projections.
- :func:`plot_score_histograms` (Figure 2): scores on in- and out-of-distribution
  sets.
- :class:`GradientDiscrepancyMonitor` (Appendix A): a skorch callback recording
  ``||grad f(S) - grad f(S_J)||`` every epoch; :func:`plot_discrepancy_curves`
  (Figure 6).

Paper 002 (LPLgrad), from one :class:`RoundRecord` per round:

- :func:`plot_feature_embeddings` (Figure 6): t-SNE of penultimate features;
- :func:`plot_confidence_histograms` (Figure 7);
- :func:`plot_per_class_accuracy` (Figure 8) and :func:`plot_class_balance`.
"""

from ._contraction import GradientDiscrepancyMonitor, plot_discrepancy_curves
from ._geometry import (
    Projection,
    acquire_batches,
    acquisition_projections,
    last_layer_gradient_embeddings,
    plot_acquisition_geometry,
)
from ._rounds import (
    RoundRecord,
    plot_class_balance,
    plot_confidence_histograms,
    plot_feature_embeddings,
    plot_per_class_accuracy,
)
from ._scores import plot_score_histograms

__all__ = [
    "GradientDiscrepancyMonitor",
    "Projection",
    "RoundRecord",
    "acquire_batches",
    "acquisition_projections",
    "last_layer_gradient_embeddings",
    "plot_acquisition_geometry",
    "plot_class_balance",
    "plot_confidence_histograms",
    "plot_discrepancy_curves",
    "plot_feature_embeddings",
    "plot_per_class_accuracy",
    "plot_score_histograms",
]
