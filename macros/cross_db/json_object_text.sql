{#-
  JSON objects built from (key, SQL expression) pairs; null values are kept as JSON null.
  json_object_value nests (pass it as a value of another object); json_object_text is its text.
-#}
{% macro json_object_value(pairs) %}
  {{ return(adapter.dispatch('json_object_value', 'marketing_signals')(pairs)) }}
{% endmacro %}

{% macro default__json_object_value(pairs) -%}
  json_object({% for key, expr in pairs %}'{{ key }}', {{ expr }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro snowflake__json_object_value(pairs) -%}
  object_construct_keep_null({% for key, expr in pairs %}'{{ key }}', {{ expr }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro json_object_text(pairs) %}
  {{ return(adapter.dispatch('json_object_text', 'marketing_signals')(pairs)) }}
{% endmacro %}

{% macro default__json_object_text(pairs) -%}
  cast({{ marketing_signals.json_object_value(pairs) }} as varchar)
{%- endmacro %}

{% macro snowflake__json_object_text(pairs) -%}
  to_varchar({{ marketing_signals.json_object_value(pairs) }})
{%- endmacro %}
