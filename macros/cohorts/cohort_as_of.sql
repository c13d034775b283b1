{#-
  The instant every cohort window ends at, as a SQL timestamp literal: the var
  marketing_signals__as_of when set, else the newest event time captured so far (the latest
  newest_occurred_at of signal_capture_runs, i.e. the latest event time). A literal, not a subquery, so the event scan can prune by time. Without a
  capture run yet (parse time, unit tests) the run start is used.
-#}
{% macro cohort_as_of() %}
  {%- set configured = var('marketing_signals__as_of', none) -%}
  {%- if configured -%}
    {{ return("cast('" ~ configured ~ "' as timestamp)") }}
  {%- endif -%}
  {%- set as_of = marketing_signals.timestamp_literal(run_started_at) -%}
  {%- set runs_ref = ref('signal_capture_runs') -%}
  {%- if execute and runs_ref.schema is not none -%}
    {%- set runs = adapter.get_relation(database=runs_ref.database, schema=runs_ref.schema,
                                        identifier=runs_ref.identifier) -%}
    {%- if runs is not none -%}
      {%- set latest = run_query("select max(newest_occurred_at) from " ~ runs) -%}
      {%- if latest.rows | length > 0 and latest.rows[0][0] is not none -%}
        {%- set as_of = marketing_signals.timestamp_literal(latest.rows[0][0]) -%}
      {%- endif -%}
    {%- endif -%}
  {%- endif -%}
  {{ return(as_of) }}
{% endmacro %}
