"""Observe: one row per anomaly window (stream x location, direction, onset, detection, end, score), with its incident."""


def model(dbt, session):
    dbt.config(materialized="table")
    from marketing_signals import frames
    from marketing_signals.streams import dbt_bridge

    refs = {"metrics": dbt.ref("stream_metrics_staged"), "registry": dbt.ref("registry_streams"),
            "calendar": dbt.ref("stream_calendar"), "context": dbt.ref("stream_run_context"),
            "models": dbt.ref("stream_models")}
    return frames.result(session, dbt_bridge.anomalies(refs, dbt.config.get("streams_settings")))
