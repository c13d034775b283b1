{#-
  Incremental runtime refresh of the cohort stage (see docs/architecture.md "Incremental
  refresh"). cohort_refresh_plan decides, once per run, whether this run is
  'full' (recompute everything), 'incremental' (recompute the customers in
  cohort_refresh_scope) or 'unchanged' (same as_of and capture watermark as the last completed
  run: nothing to do). Every incremental model of the stage deletes and re-inserts the rows of
  the scoped customers through the two macros below, so a customer that lost rows (identity
  merge, emptied window) loses them here too.
-#}

{#- The last completed refresh (cohort_refresh_log), read without ref() to avoid a cycle. -#}
{% macro cohort_refresh_previous() %}
  {%- set previous = {'as_of': none, 'captured_through': none, 'config_digest': none, 'raw_rows_through': none} -%}
  {%- if execute -%}
    {%- set log = adapter.get_relation(database=this.database, schema=this.schema, identifier='cohort_refresh_log') -%}
    {%- if log is not none -%}
      {%- set rows = run_query("select as_of, captured_through, config_digest, raw_rows_through from " ~ log
                               ~ " order by completed_at desc, as_of desc limit 1") -%}
      {%- if rows.rows | length > 0 -%}
        {%- do previous.update({'as_of': rows.rows[0][0], 'captured_through': rows.rows[0][1],
                                'config_digest': rows.rows[0][2], 'raw_rows_through': rows.rows[0][3]}) -%}
      {%- endif -%}
    {%- endif -%}
  {%- endif -%}
  {{ return(previous) }}
{% endmacro %}

{#- What defines the bucket grid: when it changes, every stored bucket number is stale. -#}
{% macro cohort_refresh_config_digest() %}
  {%- set buckets = marketing_signals.cohort_time_buckets(marketing_signals.cohort_window_hours()) -%}
  {%- set parts = [] -%}
  {%- for b in buckets -%}{%- do parts.append(b.hours_from ~ '-' ~ b.hours_to) -%}{%- endfor -%}
  {{ return(local_md5('buckets:' ~ (parts | join(',')) ~ ';methods:' ~ (var('marketing_signals__cohort_methods', none) | string))) }}
{% endmacro %}

{#- The plan row of this run as a dict (mode, as_of, previous_as_of, ...); 'full' before it exists. -#}
{% macro cohort_refresh_mode() %}
  {%- set plan_ref = ref('cohort_refresh_plan') -%}
  {%- if not execute or plan_ref.schema is none -%}{{ return('full') }}{%- endif -%}
  {%- set plan = adapter.get_relation(database=plan_ref.database, schema=plan_ref.schema, identifier=plan_ref.identifier) -%}
  {%- if plan is none -%}{{ return('full') }}{%- endif -%}
  {%- set rows = run_query("select mode from " ~ plan) -%}
  {{ return(rows.rows[0][0] if rows.rows | length > 0 else 'full') }}
{% endmacro %}

{#-
  pre_hook of every incremental model of the refresh: in 'full' mode empty the table, in
  'incremental' mode delete the scoped customers' rows, in 'unchanged' mode keep everything.
-#}
{% macro cohort_refresh_delete(customer_column='customer_key') %}
  {%- if not is_incremental() -%}{{ return('select 1') }}{%- endif -%}
  {%- set mode = marketing_signals.cohort_refresh_mode() -%}
  {%- if mode == 'full' -%}
    {{ return('delete from ' ~ this) }}
  {%- elif mode == 'incremental' -%}
    {{ return('delete from ' ~ this ~ ' where ' ~ customer_column ~ ' in (select customer_key from '
              ~ ref('cohort_refresh_scope') ~ ')') }}
  {%- else -%}
    {{ return('select 1') }}
  {%- endif -%}
{% endmacro %}

{#- WHERE predicate selecting the customers to (re)compute on this run. -#}
{% macro cohort_refresh_filter(customer_column='customer_key') -%}
  {%- if not is_incremental() -%}
    true
  {%- else -%}
    {%- set mode = marketing_signals.cohort_refresh_mode() -%}
    {%- if mode == 'full' -%}
      true
    {%- elif mode == 'incremental' -%}
      {{ customer_column }} in (select customer_key from {{ ref('cohort_refresh_scope') }})
    {%- else -%}
      false
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}
