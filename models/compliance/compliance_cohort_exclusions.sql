{#-
  Customers removed before any cohort is computed, one row per customer × rule: the
  registry_compliance_rules with applies_to = cohort_input and outcome exclude_before_cohorts
  that hold for the customer (GDPR / UK GDPR Art. 21(2) objections; minors and unverified ages
  in the age_restricted vertical). Their events never reach cohort_signal_buckets, the graph
  edges or the sequence sample (macro compliance_cohort_input_filter), so no method scores them
  and their membership exits with reason consent_withdrawn. Listed here, with the rule, so
  nobody disappears without a reason.
-#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('customer_privacy_profile') }}

{%- set customer_predicates = marketing_signals.compliance_customer_exclusion_predicates() -%}
{%- set rules = marketing_signals.compliance_rules(['cohort_input']) | selectattr('outcome', 'equalto', 'exclude_before_cohorts') | list %}

{%- set selects = [] -%}
{%- for rule in rules if rule.rule_id in customer_predicates -%}
  {%- do selects.append(
    "select profile.customer_key, '" ~ rule.rule_id ~ "' as rule_id, profile.jurisdiction, "
    ~ customer_predicates[rule.rule_id][1] ~ " as excluded_since "
    ~ "from " ~ ref('customer_privacy_profile') ~ " as profile where "
    ~ marketing_signals.compliance_scope_predicate(rule.jurisdiction, rule.vertical)
    ~ " and " ~ customer_predicates[rule.rule_id][0]) -%}
{%- endfor %}

{%- if selects | length == 0 %}
select cast(null as varchar) as customer_key, cast(null as varchar) as rule_id,
       cast(null as varchar) as jurisdiction, cast(null as timestamp) as excluded_since
where false
{%- else %}
{{ selects | join('\nunion all\n') }}
{%- endif %}
