"""Root causes: realised outcomes (incident reviews) linked to the component they explain, by incident id or by place and time."""


def model(dbt, session):
    dbt.config(materialized="table")
    from marketing_signals import frames
    from marketing_signals.rca import dbt_bridge

    refs = {"metrics": dbt.ref("stream_metrics_staged"), "registry": dbt.ref("registry_streams"),
            "calendar": dbt.ref("stream_calendar"), "context": dbt.ref("stream_run_context"),
            "models": dbt.ref("stream_models"), "causes": dbt.ref("registry_root_causes"),
            "signatures": dbt.ref("registry_root_cause_signatures"),
            "context_events": dbt.source("marketing_signals", "context_events"),
            "outcomes": dbt.source("marketing_signals", "outcomes")}
    return frames.result(session, dbt_bridge.outcomes_linked(refs, dbt.config.get("streams_settings"), dbt.config.get("rca_settings")))
