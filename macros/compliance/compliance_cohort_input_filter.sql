{#-
  Predicate that keeps an event out of every cohort input when its customer is in
  compliance_cohort_exclusions or its source system is in compliance_excluded_sources
  (GDPR Art. 21(2) objections, FCRA consumer-report data, special-category sources). Used by
  every model that reads signals_staged for cohorts.
-#}
{% macro compliance_cohort_input_filter(customer_column='customer_key', source_column='source_system') %}
    {{ customer_column }} not in (select customer_key from {{ ref('compliance_cohort_exclusions') }})
    {%- if source_column %}
    and coalesce({{ source_column }}, '') not in (select source_system from {{ ref('compliance_excluded_sources') }})
    {%- endif %}
{% endmacro %}
