{#-
  Run limits of the latest capture run, read from signal_capture_runs when the model executes
  and returned as SQL timestamp literals (constants let the engine prune the raw scan by
  received_at). window_start is 'null' when every row must be decided again (first run or a
  full refresh of the manifest). Views that use these are re-rendered on every run.
-#}
{% macro capture_run_bounds() %}
  {%- set bounds = {'window_start': 'null', 'captured_through': marketing_signals.timestamp_literal(run_started_at)} -%}
  {%- set runs_ref = ref('signal_capture_runs') -%}  {#- outside the branch so dbt records the dependency -#}
  {%- if execute and runs_ref.schema is not none -%}  {#- a unit-test fixture has no schema: keep the defaults -#}
    {%- set runs = adapter.get_relation(database=runs_ref.database, schema=runs_ref.schema,
                                        identifier=runs_ref.identifier) -%}
    {%- if runs is not none -%}
      {%- set latest = run_query("select window_start, captured_through from " ~ runs
                                 ~ " order by captured_through desc limit 1") -%}
      {%- if latest.rows | length > 0 -%}
        {%- set row = latest.rows[0] -%}
        {%- do bounds.update({
              'window_start': marketing_signals.timestamp_literal(row[0]) if row[0] is not none else 'null',
              'captured_through': marketing_signals.timestamp_literal(row[1])}) -%}
      {%- endif -%}
    {%- endif -%}
  {%- endif -%}
  {{ return(bounds) }}
{% endmacro %}

{#- A Python datetime as a SQL timestamp literal (UTC, microseconds, no zone). -#}
{% macro timestamp_literal(value) -%}
  cast('{{ value.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}

{#- Rows that arrived after the run started but within the tolerance: left for the next run. -#}
{% macro capture_is_pending(received_at, captured_through) -%}
    ({{ received_at }} > {{ captured_through }}
     and {{ received_at }} <= {{ dbt.dateadd('hour', var('marketing_signals__future_tolerance_hours'), captured_through) }})
{%- endmacro %}

{#- Rows whose arrival time is later than the run start plus the tolerance: a broken loader clock. -#}
{% macro capture_is_received_in_future(received_at, captured_through) -%}
    ({{ received_at }} > {{ dbt.dateadd('hour', var('marketing_signals__future_tolerance_hours'), captured_through) }})
{%- endmacro %}
