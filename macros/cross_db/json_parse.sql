{#- JSON text as a JSON value, so it nests inside json_object_text instead of being quoted. -#}
{% macro json_parse(expr) %}
  {{ return(adapter.dispatch('json_parse', 'marketing_signals')(expr)) }}
{% endmacro %}

{% macro default__json_parse(expr) -%}
  cast({{ expr }} as json)
{%- endmacro %}

{% macro snowflake__json_parse(expr) -%}
  try_parse_json({{ expr }})
{%- endmacro %}
