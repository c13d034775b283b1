"""Quality per method × window: fit diagnostics and, on demo data, recovery of planted truth."""


def model(dbt, session):
    dbt.config(materialized="table")
    from marketing_signals.cohorts import quality

    fits = dbt.ref("cohort_model_fits")
    assignments = dbt.ref("cohort_assignments")
    truth_dir = dbt.config.get("truth_dir")
    return quality.quality_table(session, fits, assignments, truth_dir)
