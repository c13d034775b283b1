{#- True when the whole of `expr` matches the regular expression `pattern` (a Python string). -#}
{% macro matches_pattern(expr, pattern) %}
  {{ return(adapter.dispatch('matches_pattern', 'marketing_signals')(expr, pattern)) }}
{% endmacro %}

{% macro default__matches_pattern(expr, pattern) -%}
  regexp_full_match({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro snowflake__matches_pattern(expr, pattern) -%}
  regexp_like({{ expr }}, '{{ pattern }}')
{%- endmacro %}
