{#-
  Order-independent digest of a set of ids (aggregate): XOR of a per-id hash. DuckDB: 128-bit
  MD5 numbers; Snowflake: 64-bit HASH. Identifies the exact input set for chain of custody;
  not a commitment against a deliberate collision (the ledger's SHA-256 chain is).
-#}
{% macro set_digest(expr) %}
  {{ return(adapter.dispatch('set_digest', 'marketing_signals')(expr)) }}
{% endmacro %}

{% macro default__set_digest(expr) -%}
  cast(bit_xor(md5_number({{ expr }})) as varchar)
{%- endmacro %}

{% macro snowflake__set_digest(expr) -%}
  to_varchar(bitxor_agg(hash({{ expr }})))
{%- endmacro %}
