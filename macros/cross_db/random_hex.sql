{#- 64 random hex characters (256 bits) per row, for per-subject salts. -#}
{% macro random_hex() %}
  {{ return(adapter.dispatch('random_hex', 'marketing_signals')()) }}
{% endmacro %}

{% macro default__random_hex() -%}
  sha256(cast(uuid() as varchar) || cast(uuid() as varchar))
{%- endmacro %}

{% macro snowflake__random_hex() -%}
  sha2(uuid_string() || uuid_string(), 256)
{%- endmacro %}
