{#- The text value of top-level key `key` in the JSON object text `expr` (null when absent). -#}
{% macro json_text_field(expr, key) %}
  {{ return(adapter.dispatch('json_text_field', 'marketing_signals')(expr, key)) }}
{% endmacro %}

{% macro default__json_text_field(expr, key) -%}
  json_extract_string({{ expr }}, '$.{{ key }}')
{%- endmacro %}

{% macro snowflake__json_text_field(expr, key) -%}
  try_parse_json({{ expr }}):{{ key }}::varchar
{%- endmacro %}
