{#- Deterministic sample: true for about per_million in every million distinct values of expr. -#}
{% macro cohort_sample_predicate(expr, per_million) %}
  {{ return(adapter.dispatch('cohort_sample_predicate', 'marketing_signals')(expr, per_million)) }}
{% endmacro %}

{% macro default__cohort_sample_predicate(expr, per_million) -%}
  (hash({{ expr }}) % 1000000) < {{ per_million }}
{%- endmacro %}

{% macro snowflake__cohort_sample_predicate(expr, per_million) -%}
  (abs(hash({{ expr }})) % 1000000) < {{ per_million }}
{%- endmacro %}
