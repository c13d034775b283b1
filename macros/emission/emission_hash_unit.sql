{#-
  A number in [0, 1) from the first 32 bits of SHA-256 of a text expression: the same on every
  engine and every run, so holdout assignment is deterministic and portable.
-#}
{% macro emission_hash_unit(expr) %}
  {{ return(adapter.dispatch('emission_hash_unit', 'marketing_signals')(expr)) }}
{% endmacro %}

{% macro default__emission_hash_unit(expr) -%}
  (cast(('0x' || substr(sha256({{ expr }}), 1, 8)) as bigint) / 4294967296.0)
{%- endmacro %}

{% macro snowflake__emission_hash_unit(expr) -%}
  (to_number(substr(sha2({{ expr }}, 256), 1, 8), 'XXXXXXXX') / 4294967296.0)
{%- endmacro %}
