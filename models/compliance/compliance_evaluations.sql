{#-
  The compliance overlay, evaluated per customer × subscriber (every cohort decision for that
  pair shares the outcome; attestation_candidates writes it on each decision). Every
  registry_compliance_rules row that applies to decisions, emissions or data sources (and is
  not an exclude-before-cohorts rule, which compliance_cohort_exclusions handles) is checked:
  its jurisdiction and vertical from the registry, its condition from the predicate in
  macros/compliance/compliance_rules.sql.

  outcome (first that applies):
    suppress          a suppress rule holds (opt-outs, no lawful basis, no Art. 22 exception);
    flag_for_counsel  a flag_for_counsel rule holds, or an emit_with_fields rule holds and one
                      of its required fields has no value; held back until counsel records an
                      exception (seed compliance_exceptions, with a written justification);
    emit              otherwise (with the required fields of every applicable rule).
-#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('compliance_exceptions') }}

{%- set rules = marketing_signals.compliance_rules(['decision', 'emission', 'data_source'])
      | rejectattr('outcome', 'equalto', 'exclude_before_cohorts') | list -%}
{%- set as_of = marketing_signals.cohort_as_of() -%}
{%- set field_names = [] -%}
{%- for rule in rules if rule.outcome == 'emit_with_fields' -%}
  {%- for field in rule.required_fields if field not in field_names -%}{%- do field_names.append(field) -%}{%- endfor -%}
{%- endfor -%}
{#- rule_id -> an unexpired counsel exception covers this customer × subscriber -#}
{%- set exception_predicates = marketing_signals.compliance_exception_predicates('context.subscriber_id', 'context.customer_key') %}

with safeguards as (
{{ marketing_signals.compliance_safeguards_pivot() }}
),

context as (
    select
        profile.customer_key,
        subscribers.subscriber_id,
        profile.jurisdiction,
        profile.home_location_id,
        {%- for rule in rules %}
        coalesce({{ marketing_signals.compliance_scope_predicate(rule.jurisdiction, rule.vertical) }}
                 and ({{ marketing_signals.compliance_rule_predicate(rule.rule_id) }}), false) as applies__{{ rule.rule_id | lower }},
        {%- endfor %}
        {%- for field in field_names %}
        {{ marketing_signals.compliance_field_value(field) }} as field__{{ field }},
        {%- endfor %}
        subscribers.decision_significance,
        {{ marketing_signals.compliance_field_value('lawful_basis') }} as lawful_basis,
        {{ marketing_signals.compliance_field_value('art22_exception') }} as art22_exception,
        {{ marketing_signals.compliance_field_value('opt_out_state') }} as opt_out_state,
        safeguards.human_review_path,
        safeguards.contest_channel,
        safeguards.admt_notice_ref,
        safeguards.ai_notice_ref,
        safeguards.decision_logic_ref,
        profile.profiling_consent,
        profile.marketing_consent,
        profile.sale_share_consent
    from {{ ref('customer_privacy_profile') }} as profile
    cross join {{ ref('registry_subscribers') }} as subscribers
    left join safeguards
        on safeguards.subscriber_id = subscribers.subscriber_id
    where profile.customer_key not in (select customer_key from {{ ref('compliance_cohort_exclusions') }})
),

flags as (
    select
        context.*,
        ''
        {%- for rule in rules %} || case when applies__{{ rule.rule_id | lower }} then '{{ rule.rule_id }}|' else '' end{% endfor %}
            as rule_list,
        ''
        {%- for rule in rules if rule.outcome == 'suppress' %} || case when applies__{{ rule.rule_id | lower }} then '{{ rule.rule_id }}|' else '' end{% endfor %}
            as suppress_list,
        ''
        {%- for rule in rules if rule.outcome == 'flag_for_counsel' %} || case when applies__{{ rule.rule_id | lower }} and not ({{ exception_predicates.get(rule.rule_id, 'false') }}) then '{{ rule.rule_id }}|' else '' end{% endfor %}
            as counsel_list,
        ''
        {%- for rule in rules if rule.outcome == 'emit_with_fields' %}{% for field in rule.required_fields %} || case when applies__{{ rule.rule_id | lower }} and field__{{ field }} is null and not ({{ exception_predicates.get(rule.rule_id, 'false') }}) then '{{ rule.rule_id }}:{{ field }}|' else '' end{% endfor %}{% endfor %}
            as missing_list
    from context
)

select
    customer_key,
    subscriber_id,
    jurisdiction,
    home_location_id,
    case
        when suppress_list <> '' then 'suppress'
        when counsel_list <> '' or missing_list <> '' then 'flag_for_counsel'
        else 'emit'
    end as outcome,
    nullif(rtrim(rule_list, '|'), '') as rule_ids,
    nullif(rtrim(suppress_list, '|'), '') as suppress_rule_ids,
    nullif(rtrim(counsel_list, '|'), '') as counsel_rule_ids,
    nullif(rtrim(missing_list, '|'), '') as missing_fields,
    -- the required fields with a value for this customer × subscriber, and a digest of the
    -- values (name=value lines in name order; values come from the registries and the
    -- profile, so an auditor can recompute it)
    {%- set digest_parts = [] -%}
    {%- for field in field_names | sort -%}
      {%- do digest_parts.append("'" ~ field ~ "=' || coalesce(cast(field__" ~ field ~ " as varchar), '') || chr(10)") -%}
    {%- endfor %}
    nullif(rtrim(''
        {%- for field in field_names | sort %} || case when field__{{ field }} is not null then '{{ field }}|' else '' end{% endfor %}, '|'), '') as required_fields_present,
    {{ marketing_signals.sha256_hex(digest_parts | join(' || ') if digest_parts else "''") }} as required_fields_digest,
    decision_significance,
    lawful_basis,
    art22_exception,
    opt_out_state,
    human_review_path,
    contest_channel,
    admt_notice_ref,
    ai_notice_ref,
    decision_logic_ref,
    profiling_consent,
    marketing_consent,
    sale_share_consent
from flags
