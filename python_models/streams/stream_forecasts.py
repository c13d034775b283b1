"""Forecast: the next horizon days per stream x location with 80% and 95% prediction intervals."""


def model(dbt, session):
    dbt.config(materialized="table")
    from marketing_signals import frames
    from marketing_signals.streams import dbt_bridge

    refs = {"metrics": dbt.ref("stream_metrics_staged"), "registry": dbt.ref("registry_streams"),
            "calendar": dbt.ref("stream_calendar"), "context": dbt.ref("stream_run_context"),
            "models": dbt.ref("stream_models")}
    return frames.result(session, dbt_bridge.forecasts(refs, dbt.config.get("streams_settings")))
