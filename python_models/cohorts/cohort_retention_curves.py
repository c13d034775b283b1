"""Acquisition-cohort retention: Kaplan-Meier survival of customer activity by first-seen month."""


def model(dbt, session):
    dbt.config(materialized="table")
    from marketing_signals.cohorts import bridge

    customers = dbt.ref("cohort_customer_windows")
    context = dbt.ref("cohort_run_context")
    return bridge.retention_table(session, customers, context)
