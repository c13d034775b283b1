"""Confidence calibration per method × window: status, ECE and Brier before and after (see
marketing_signals.membership.calibration)."""


def model(dbt, session):
    dbt.config(materialized="table")
    from marketing_signals import frames
    from marketing_signals.membership import calibration, tables

    snapshots = frames.read(session, dbt.ref("cohort_calibration_snapshots"))
    result = calibration.fit_calibration(calibration.pairs_from_snapshots(snapshots))
    return frames.result(session, tables.summary_table(result))
