{#- True when the whole of `expr` matches the regular expression `pattern` (a Python string). -#}
{% macro matches_pattern(expr, pattern) %}
  {{ return(adapter.dispatch('matches_pattern', 'marketing_signals')(expr, pattern)) }}
{% endmacro %}

{% macro default__matches_pattern(expr, pattern) -%}
  regexp_full_match({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{#- Snowflake string literals treat a backslash as an escape: double it so `\|` reaches the
    regular expression as written (regexp_like matches the whole string). -#}
{% macro snowflake__matches_pattern(expr, pattern) -%}
  regexp_like({{ expr }}, '{{ pattern | replace("\\", "\\\\") }}')
{%- endmacro %}
