{#- True when the text `expr` parses as a JSON object ({...}); false for arrays, scalars, bad JSON. -#}
{% macro is_json_object(expr) %}
  {{ return(adapter.dispatch('is_json_object', 'marketing_signals')(expr)) }}
{% endmacro %}

{% macro default__is_json_object(expr) -%}
  {#- Valid JSON whose first non-blank character is '{' is an object. Cheaper than json_type()
      (which raises on invalid input: DuckDB evaluates both sides of an AND); ltrim only when needed. -#}
  {%- set object_prefix = "'{%'" -%}
  (json_valid({{ expr }}) and case when {{ expr }} like {{ object_prefix }} then true
                                   else ltrim({{ expr }}) like {{ object_prefix }} end)
{%- endmacro %}

{% macro snowflake__is_json_object(expr) -%}
  coalesce(is_object(try_parse_json({{ expr }})), false)
{%- endmacro %}
