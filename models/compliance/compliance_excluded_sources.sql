{#-
  Source systems whose events never enter cohorts, one row per source × rule: consumer-report
  data (FCRA_NO_CONSUMER_REPORT), special-category sources (GDPR_ART22_SPECIAL_CATEGORY:
  explicit consent to special-category profiling is not modelled, so they are excluded for
  everyone) and health-revealing sources in the healthcare vertical
  (VERTICAL_HEALTH_SENSITIVE_INPUT). Read from registry_data_sources.
-#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('registry_data_sources') }}

{%- set source_predicates = marketing_signals.compliance_source_exclusion_predicates() -%}
{%- set rules = marketing_signals.compliance_rules(['cohort_input', 'data_source']) | selectattr('outcome', 'equalto', 'exclude_before_cohorts') | list %}
{%- set vertical = var('marketing_signals__vertical') -%}

{%- set selects = [] -%}
{%- for rule in rules if rule.rule_id in source_predicates and rule.vertical in ('all', vertical) -%}
  {%- do selects.append("select sources.source_system, '" ~ rule.rule_id ~ "' as rule_id from "
        ~ ref('registry_data_sources') ~ " as sources where " ~ source_predicates[rule.rule_id]) -%}
{%- endfor %}

{%- if selects | length == 0 %}
select cast(null as varchar) as source_system, cast(null as varchar) as rule_id where false
{%- else %}
{{ selects | join('\nunion all\n') }}
{%- endif %}
