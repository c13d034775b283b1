"""Fitted intent models, one row per window and refit (append-only, kept on --full-refresh; see
cohorts.bridge.fit_table)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="append", full_refresh=False)
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
    previous = dbt.this if dbt.is_incremental else None
    return bridge.fit_table("intent", inputs, settings, previous)
