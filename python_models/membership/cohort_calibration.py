"""Confidence calibration per method × window: status, ECE and Brier before and after (see
marketing_signals.membership.calibration)."""


def model(dbt, session):
    dbt.config(materialized="table")
    from marketing_signals.membership import calibration, tables

    snapshots = dbt.ref("cohort_calibration_snapshots").df()
    result = calibration.fit_calibration(calibration.pairs_from_snapshots(snapshots))
    return tables.summary_table(result)
