"""Analysis of a study: scores with intervals, similarity (weights, CKA, data), factors, plots, the report."""

from audiotransfer.analysis.cka import MinibatchCKA, linear_cka, model_cka
from audiotransfer.analysis.factors import FactorFit, answer, fit_factors, headline
from audiotransfer.analysis.report import analyse, write_analysis, write_report
from audiotransfer.analysis.scores import score_table, transfer_gain
from audiotransfer.analysis.similarity import (
    block_weight_distances,
    frechet_distance,
    label_share,
    mmd_rbf,
    weight_distance,
    weight_distance_matrix,
)

__all__ = [
    "FactorFit",
    "MinibatchCKA",
    "analyse",
    "answer",
    "block_weight_distances",
    "fit_factors",
    "frechet_distance",
    "headline",
    "label_share",
    "linear_cka",
    "mmd_rbf",
    "model_cka",
    "score_table",
    "transfer_gain",
    "weight_distance",
    "weight_distance_matrix",
    "write_analysis",
    "write_report",
]
