{#- Lower-case hex SHA-256 of a text expression. -#}
{% macro sha256_hex(expr) %}
  {{ return(adapter.dispatch('sha256_hex', 'marketing_signals')(expr)) }}
{% endmacro %}

{% macro default__sha256_hex(expr) -%}
  sha256({{ expr }})
{%- endmacro %}

{% macro snowflake__sha256_hex(expr) -%}
  sha2({{ expr }}, 256)
{%- endmacro %}
