"""Root causes: the cause priors recalibrated by every realised outcome up to as_of (Dirichlet),
one version per distinct set of outcomes. Append-only and kept on --full-refresh: a version
once used to rank is never rewritten (rca_hypotheses.prior_version points here)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="append", full_refresh=False)
    from marketing_signals import frames
    from marketing_signals.rca import dbt_bridge

    refs = {"metrics": dbt.ref("stream_metrics_staged"), "registry": dbt.ref("registry_streams"),
            "calendar": dbt.ref("stream_calendar"), "context": dbt.ref("stream_run_context"),
            "models": dbt.ref("stream_models"), "causes": dbt.ref("registry_root_causes"),
            "signatures": dbt.ref("registry_root_cause_signatures"),
            "context_events": dbt.source("marketing_signals", "context_events"),
            "outcomes": dbt.source("marketing_signals", "outcomes")}
    previous = dbt.this if dbt.is_incremental else None
    priors = dbt_bridge.cause_priors(refs, dbt.config.get("streams_settings"), dbt.config.get("rca_settings"),
                                     session=session, previous=previous)
    return frames.result(session, priors)
