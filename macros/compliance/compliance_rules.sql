{#-
  How each registry_compliance_rules row is evaluated. The registry owns the rule (citation,
  jurisdiction, vertical, outcome, required fields); this file owns its predicate in SQL over
  one customer × subscriber row of compliance_evaluations (aliases: profile = the customer's
  customer_privacy_profile row, subscribers = registry_subscribers, safeguards = the pivoted
  registry_decision_safeguards of the subscriber). Jurisdiction and vertical are matched from
  the registry columns, so a predicate states only the rule's own condition.

  Adding a rule is one CSV row plus one line here; a registry rule with no predicate is a
  compile error, never a silently skipped rule.
-#}
{% macro compliance_rule_predicate(rule_id) %}
  {%- set significant = "subscribers.decision_significance = 'similarly_significant'" -%}
  {%- set ad_platform = "subscribers.destination_kind = 'ad_platform'" -%}
  {%- set third_party = "subscribers.destination_kind in ('ad_platform', 'third_party')" -%}
  {%- set predicates = {
      'GDPR_ART22_SIGNIFICANT': significant,
      'GDPR_ART22_NO_EXCEPTION': significant ~ " and " ~ marketing_signals.compliance_field_value('art22_exception') ~ " is null",
      'GDPR_ART6_LAWFUL_BASIS': marketing_signals.compliance_field_value('lawful_basis') ~ " is null",
      'UK_GDPR_ART22_SIGNIFICANT': significant,
      'UK_GDPR_ART6_LAWFUL_BASIS': marketing_signals.compliance_field_value('lawful_basis') ~ " is null",
      'CCPA_ADMT_PRE_USE_NOTICE': significant,
      'CCPA_ADMT_OPT_OUT': significant ~ " and profile.profiling_consent = 'withdrawn'",
      'CCPA_ADMT_ACCESS': significant,
      'CCPA_SALE_SHARE_OPT_OUT': ad_platform ~ " and profile.sale_share_consent = 'withdrawn'",
      'FCRA_THIRD_PARTY_ENRICHMENT': "profile.has_unreviewed_enrichment",
      'GLBA_NPI_NOTICE_OPT_OUT': third_party,
      'GLBA_NPI_OPTED_OUT': third_party ~ " and (profile.glba_sharing_consent = 'withdrawn' or profile.glba_notice_at is null)",
      'CPA_PROFILING_OPT_OUT': significant ~ " and profile.profiling_consent = 'withdrawn'",
      'CPA_TARGETED_AD_OPT_OUT': ad_platform ~ " and (profile.sale_share_consent = 'withdrawn' or profile.marketing_consent = 'withdrawn')",
      'COLORADO_AI_ACT_NOTICE': significant,
      'COLORADO_AI_ACT_ADVERSE': significant,
      'VERTICAL_FS_FAIR_LENDING': significant,
      'VERTICAL_HEALTH_AD_PLATFORM': ad_platform,
      'US_MARKETING_OPT_OUT': "subscribers.destination_kind in ('processor', 'ad_platform') and profile.marketing_consent = 'withdrawn'",
  } -%}
  {%- if rule_id not in predicates -%}
    {{ exceptions.raise_compiler_error("compliance rule " ~ rule_id ~ " (registry_compliance_rules) has no predicate in macros/compliance/compliance_rules.sql") }}
  {%- endif -%}
  {{ return(predicates[rule_id]) }}
{% endmacro %}

{#-
  The value a decision carries for a required field named in registry_compliance_rules.required_fields.
  Static safeguards (notices, channels, contacts) come from registry_decision_safeguards;
  per-customer ones from customer_privacy_profile; per-decision ones (explanation, key
  parameters, principal reasons, data sources, the output) are written on every attestation
  by attestation_candidates, so they are always present here.
-#}
{% macro compliance_field_value(field) %}
  {%- set per_decision = "'per_decision'" -%}
  {%- set fields = {
      'lawful_basis': "coalesce(case when profile.marketing_consent = 'granted' then 'consent (Art. 6(1)(a))' end, safeguards.lawful_basis, case when safeguards.lia_reference is not null then 'legitimate_interests (Art. 6(1)(f))' end)",
      'lia_reference': "safeguards.lia_reference",
      'art22_exception': "coalesce(safeguards.art22_exception_basis, case when profile.profiling_consent = 'granted' then 'explicit_consent' end)",
      'human_review_path': "safeguards.human_review_path",
      'contest_channel': "safeguards.contest_channel",
      'admt_notice_ref': "safeguards.admt_notice_ref",
      'admt_purpose': "safeguards.admt_purpose",
      'decision_logic_ref': "safeguards.decision_logic_ref",
      'ai_notice_ref': "safeguards.ai_notice_ref",
      'decision_purpose': "safeguards.decision_purpose",
      'deployer_contact': "safeguards.deployer_contact",
      'correction_channel': "safeguards.correction_channel",
      'appeal_path': "safeguards.appeal_path",
      'opt_out_state': "case when profile.profiling_consent = 'withdrawn' or profile.sale_share_consent = 'withdrawn' then 'opted_out' else 'not_opted_out' end",
      'glba_notice_delivered_at': "cast(profile.glba_notice_at as varchar)",
      'glba_opt_out_state': "coalesce(profile.glba_sharing_consent, 'not_exercised')",
      'explanation': per_decision,
      'key_parameters': per_decision,
      'decision_output': per_decision,
      'principal_reasons': per_decision,
      'data_sources': per_decision,
  } -%}
  {%- if field not in fields -%}
    {{ exceptions.raise_compiler_error("required field '" ~ field ~ "' (registry_compliance_rules.required_fields) has no value in macros/compliance/compliance_rules.sql") }}
  {%- endif -%}
  {{ return(fields[field]) }}
{% endmacro %}

{#- The safeguard field names registry_decision_safeguards may hold (pivoted to columns). -#}
{% macro compliance_safeguard_fields() %}
  {{ return(['lawful_basis', 'lia_reference', 'art22_exception_basis', 'human_review_path', 'contest_channel',
             'admt_notice_ref', 'admt_purpose', 'decision_logic_ref', 'ai_notice_ref', 'decision_purpose',
             'deployer_contact', 'correction_channel', 'appeal_path']) }}
{% endmacro %}

{#- SQL predicate: does a registry rule row (alias `rules`-free: literal values) match the customer's jurisdiction and the package vertical? -#}
{% macro compliance_scope_predicate(rule_jurisdiction, rule_vertical) %}
  {%- set jurisdiction_match -%}
    {%- if rule_jurisdiction == 'ALL' -%} true
    {%- elif rule_jurisdiction == 'US' -%} profile.jurisdiction like 'US-%'
    {%- else -%} profile.jurisdiction = '{{ rule_jurisdiction }}'
    {%- endif -%}
  {%- endset -%}
  {%- set vertical_match = (rule_vertical == 'all' or rule_vertical == var('marketing_signals__vertical')) -%}
  {{ return("(" ~ jurisdiction_match ~ ")" if vertical_match else "false") }}
{% endmacro %}

{#- Rows of registry_compliance_rules (rule_id, jurisdiction, vertical, applies_to, outcome, required_fields) for the given applies_to values; empty at parse time. -#}
{% macro compliance_rules(applies_to) %}
  {%- set registry = ref('registry_compliance_rules') -%}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set result = run_query("select rule_id, jurisdiction, vertical, applies_to, outcome, coalesce(required_fields, '') from "
        ~ registry ~ " where applies_to in ('" ~ applies_to | join("', '") ~ "') order by rule_id") -%}
  {%- set rules = [] -%}
  {%- for row in result.rows -%}
    {%- do rules.append({'rule_id': row[0], 'jurisdiction': row[1], 'vertical': row[2], 'applies_to': row[3],
                         'outcome': row[4], 'required_fields': (row[5].split('|') if row[5] else [])}) -%}
  {%- endfor -%}
  {{ return(rules) }}
{% endmacro %}

{#- exclude_before_cohorts rules about customers: rule_id -> (predicate over customer_privacy_profile as `profile`, since when). -#}
{% macro compliance_customer_exclusion_predicates() %}
  {{ return({
      'GDPR_ART21_DM_OBJECTION': ('profile.objected_to_direct_marketing', 'profile.objected_at'),
      'UK_GDPR_ART21_DM_OBJECTION': ('profile.objected_to_direct_marketing', 'profile.objected_at'),
      'VERTICAL_AGE_RESTRICTED_MINORS': ('not profile.age_verified', 'cast(null as timestamp)'),
  }) }}
{% endmacro %}

{#- exclude_before_cohorts rules about data sources: rule_id -> predicate over registry_data_sources as `sources`. -#}
{% macro compliance_source_exclusion_predicates() %}
  {{ return({
      'FCRA_NO_CONSUMER_REPORT': "sources.origin = 'consumer_reporting_agency'",
      'GDPR_ART22_SPECIAL_CATEGORY': "sources.special_category <> 'none'",
      'VERTICAL_HEALTH_SENSITIVE_INPUT': "sources.special_category = 'health'",
  }) }}
{% endmacro %}

{#- registry_decision_safeguards pivoted to one row per subscriber, one column per safeguard field. -#}
{% macro compliance_safeguards_pivot() %}
    select
        subscriber_id,
        {%- for field in marketing_signals.compliance_safeguard_fields() %}
        max(case when field_name = '{{ field }}' then field_value end) as {{ field }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('registry_decision_safeguards') }}
    group by 1
{% endmacro %}

{#-
  rule_id -> SQL predicate "a valid, unexpired compliance_exceptions row covers this row", over the
  given aliases for subscriber and customer columns ("false" when none does). Read at compile
  time: exceptions are a handful of reviewed rows.
-#}
{% macro compliance_exception_predicates(subscriber_column, customer_column) %}
  {%- set seed = ref('compliance_exceptions') -%}
  {%- set registry = ref('registry_compliance_rules') -%}
  {%- set as_of = marketing_signals.cohort_as_of() -%}
  {%- set predicates = {} -%}
  {%- if execute -%}
    {#- only valid exceptions count (the test compliance_exceptions_justified names the others) -#}
    {%- set found = run_query("select exceptions.rule_id, exceptions.subscriber_id, exceptions.customer_key from " ~ seed
          ~ " as exceptions inner join " ~ registry ~ " as rules on rules.rule_id = exceptions.rule_id"
          ~ " where rules.outcome in ('flag_for_counsel', 'emit_with_fields')"
          ~ " and length(trim(coalesce(exceptions.justification, ''))) >= 40"
          ~ " and exceptions.approved_by is not null and exceptions.approved_at is not null"
          ~ " and (exceptions.expires_at is null or exceptions.expires_at > " ~ as_of ~ ")") -%}
    {%- for row in found.rows -%}
      {%- set clause = "(" ~ (subscriber_column ~ " = '" ~ row[1] ~ "'" if row[1] else "true") ~ " and "
                           ~ (customer_column ~ " = '" ~ row[2] ~ "'" if row[2] else "true") ~ ")" -%}
      {%- do predicates.update({row[0]: (predicates[row[0]] ~ " or " ~ clause) if row[0] in predicates else clause}) -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(predicates) }}
{% endmacro %}
