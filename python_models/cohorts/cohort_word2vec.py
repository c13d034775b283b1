"""word2vec assignments for every eligible customer × window with the latest fit; incremental:
after new events only the customers in cohort_refresh_scope are rescored when the method's
registry refresh_scope allows it (see cohorts.bridge.incremental_reader)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="append")
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
    return bridge.incremental_reader(
        "word2vec", inputs, dbt.ref("cohort_fit_word2vec"), settings,
        existing=dbt.this if dbt.is_incremental else None,
        plan=dbt.ref("cohort_refresh_plan"),
        scope=dbt.ref("cohort_refresh_scope"),
    )
