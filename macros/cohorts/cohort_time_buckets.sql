{#-
  Time buckets: the age ranges (hours before as_of) whose unions are exactly every registry
  window at every anchor (as_of and the backtest anchors). Events are counted once per bucket
  in one scan; any window at any anchor is then a sum over its buckets (cohort_window_buckets).

  Returns a list of dicts {bucket, hours_from, hours_to}; hours_to is none for the open-ended
  oldest bucket. Bucket b holds events with hours_from <= age < hours_to.
-#}
{% macro cohort_time_buckets(window_hours) %}
  {%- set anchors = [0] + var('marketing_signals__backtest_anchor_hours') -%}
  {%- set edges = [] -%}
  {%- for anchor in anchors -%}
    {%- if anchor > 0 -%}{%- do edges.append(anchor | int) -%}{%- endif -%}
    {%- for hours in window_hours -%}
      {%- do edges.append((anchor + hours) | int) -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- set edges = edges | unique | sort -%}
  {%- set buckets = [] -%}
  {%- set lower = namespace(value=0) -%}
  {%- for edge in edges -%}
    {%- do buckets.append({'bucket': loop.index0, 'hours_from': lower.value, 'hours_to': edge}) -%}
    {%- set lower.value = edge -%}
  {%- endfor -%}
  {%- do buckets.append({'bucket': edges | length, 'hours_from': lower.value, 'hours_to': none}) -%}
  {{ return(buckets) }}
{% endmacro %}

{#- The registry's finite window lengths in hours, read when the model executes. -#}
{% macro cohort_window_hours() %}
  {%- set windows_ref = ref('registry_windows') -%}
  {%- set hours = [24, 168, 672, 2160, 8760] -%}
  {%- if execute and windows_ref.schema is not none -%}
    {%- if adapter.get_relation(database=windows_ref.database, schema=windows_ref.schema,
                                identifier=windows_ref.identifier) is none -%}
      {{ exceptions.raise_compiler_error("registry_windows is not loaded: run `dbt seed` (or `dbt build`) first") }}
    {%- endif -%}
    {%- set rows = run_query("select window_hours from " ~ windows_ref ~ " where window_hours is not null order by 1") -%}
    {%- set hours = rows.columns[0].values() | map('int') | list -%}
  {%- endif -%}
  {{ return(hours) }}
{% endmacro %}

{#- CASE expression mapping an event time to its bucket number (null when after as_of). -#}
{% macro cohort_bucket_expression(occurred_at, as_of, buckets) -%}
  case
  {%- for b in buckets if b.hours_to is not none %}
    when {{ occurred_at }} > {{ dbt.dateadd('hour', -1 * b.hours_to, as_of) }} then {{ b.bucket }}
  {%- endfor %}
    else {{ (buckets | last).bucket }}
  end
{%- endmacro %}
