"""gaussian_mixture assignments for every eligible customer × window, scored in batches with the latest fit."""


def model(dbt, session):
    dbt.config(materialized="table")
    from marketing_signals.cohorts import bridge

    inputs = bridge.Inputs(
        session,
        buckets=dbt.ref("cohort_signal_buckets"),
        window_buckets=dbt.ref("cohort_window_buckets"),
        context=dbt.ref("cohort_run_context"),
        methods=dbt.ref("registry_cohort_methods"),
        sufficiency=dbt.ref("cohort_sufficiency"),
    )
    settings = bridge.Settings.from_config(dbt.config.get("cohort_settings"))
    return bridge.score_reader("gaussian_mixture", inputs, dbt.ref("cohort_fit_gaussian_mixture"), settings)
