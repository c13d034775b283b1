"""Observe, day by day: value, expected value from the robust seasonal baseline, standardised residual, anomaly flag."""


def model(dbt, session):
    dbt.config(materialized="table")
    from marketing_signals import frames
    from marketing_signals.streams import dbt_bridge

    refs = {"metrics": dbt.ref("stream_metrics_staged"), "registry": dbt.ref("registry_streams"),
            "calendar": dbt.ref("stream_calendar"), "context": dbt.ref("stream_run_context"),
            "models": dbt.ref("stream_models")}
    return frames.result(session, dbt_bridge.observations(refs, dbt.config.get("streams_settings")))
