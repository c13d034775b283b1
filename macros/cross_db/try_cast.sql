{#- cast(expr as type), or null when the value does not convert (dbt.safe_cast is a plain cast on DuckDB). -#}
{% macro try_cast(expr, type) %}
  {{ return(adapter.dispatch('try_cast', 'marketing_signals')(expr, type)) }}
{% endmacro %}

{% macro default__try_cast(expr, type) -%}
  try_cast({{ expr }} as {{ type }})
{%- endmacro %}

{% macro snowflake__try_cast(expr, type) -%}
  {#- Snowflake's try_cast only accepts text input. -#}
  try_cast(to_varchar({{ expr }}) as {{ type }})
{%- endmacro %}
