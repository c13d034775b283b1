"""Calibration curves per method × window, long: the isotonic breakpoints cohort_membership
interpolates, and the reliability diagrams (raw and out-of-fold calibrated)."""


def model(dbt, session):
    dbt.config(materialized="table")
    from marketing_signals import frames
    from marketing_signals.membership import calibration, tables

    snapshots = frames.read(session, dbt.ref("cohort_calibration_snapshots"))
    result = calibration.fit_calibration(calibration.pairs_from_snapshots(snapshots))
    return frames.result(session, tables.points_table(result))
