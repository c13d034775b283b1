{#- A relation with one row per calendar day (column `day`, a date) from start_expr to end_expr inclusive. -#}
{% macro day_spine(start_expr, end_expr) %}
  {{ return(adapter.dispatch('day_spine', 'marketing_signals')(start_expr, end_expr)) }}
{% endmacro %}

{% macro default__day_spine(start_expr, end_expr) -%}
  (select cast(unnest(generate_series(cast({{ start_expr }} as timestamp), cast({{ end_expr }} as timestamp), interval 1 day)) as date) as day)
{%- endmacro %}

{% macro snowflake__day_spine(start_expr, end_expr) -%}
  (select dateadd(day, row_number() over (order by seq4()) - 1, cast({{ start_expr }} as date)) as day
   from table(generator(rowcount => 36600))
   qualify day <= cast({{ end_expr }} as date))
{%- endmacro %}
