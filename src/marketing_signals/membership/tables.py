"""The dbt-facing tables of confidence calibration: a summary row per method × window (with the
as_of of the fit) and one long table of curve points, typed so the SQL that reads them never
meets an all-null object column."""
from __future__ import annotations

import pandas as pd

from .calibration import CalibrationResult

SUMMARY_COLUMNS = {
    "method_id": "string", "window_id": "string", "status": "string", "n_pairs": "int64",
    "n_as_of_pairs": "int64", "held_rate": "float64", "ece_raw": "float64", "ece_calibrated": "float64",
    "brier_raw": "float64", "brier_calibrated": "float64", "calibration_version": "string",
    "first_as_of": "datetime64[us]", "last_as_of": "datetime64[us]",
}
POINT_COLUMNS = {
    "method_id": "string", "window_id": "string", "calibration_version": "string", "kind": "string",
    "point": "int64", "x": "float64", "y": "float64", "n": "int64",
}


def summary_table(result: CalibrationResult) -> pd.DataFrame:
    """One row per method × window with the fit's status, sizes and errors."""
    frame = result.summary.reindex(columns=list(SUMMARY_COLUMNS))
    return frame.astype(SUMMARY_COLUMNS).sort_values(["method_id", "window_id"]).reset_index(drop=True)


def points_table(result: CalibrationResult) -> pd.DataFrame:
    """Breakpoints (kind 'breakpoint': x raw, y calibrated) and reliability bins (kind 'raw' or
    'calibrated_out_of_fold': x mean predicted, y observed rate, n pairs in the bin)."""
    versions = result.summary[["method_id", "window_id", "calibration_version"]]
    bp = result.breakpoints.rename(columns={"raw_confidence": "x", "calibrated_confidence": "y"})
    bp = bp.assign(kind="breakpoint", n=pd.NA)
    curves = result.curves.rename(columns={"bin": "point", "mean_predicted": "x", "observed_rate": "y"})
    points = pd.concat([bp[["method_id", "window_id", "kind", "point", "x", "y", "n"]],
                        curves[["method_id", "window_id", "kind", "point", "x", "y", "n"]]], ignore_index=True)
    points = points.merge(versions, on=["method_id", "window_id"], how="left")
    points["n"] = points["n"].fillna(0)
    points = points.reindex(columns=list(POINT_COLUMNS)).astype(POINT_COLUMNS)
    return points.sort_values(["method_id", "window_id", "kind", "point"]).reset_index(drop=True)
