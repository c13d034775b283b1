"""Per stream: the ETS parameters fitted with statsmodels on sampled series, and the model chosen by backtest (ETS or seasonal naive)."""


def model(dbt, session):
    dbt.config(materialized="table")
    from marketing_signals import frames
    from marketing_signals.streams import dbt_bridge

    refs = {"metrics": dbt.ref("stream_metrics_staged"), "registry": dbt.ref("registry_streams"),
            "calendar": dbt.ref("stream_calendar"), "context": dbt.ref("stream_run_context")}
    return frames.result(session, dbt_bridge.stream_models(refs, dbt.config.get("streams_settings")))
