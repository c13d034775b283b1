{#-
  Independent check of the outputs against every rule of registry_compliance_rules: one row per
  breaking row. It re-evaluates each rule's predicate on what the feeds and cohorts actually
  hold, without reading compliance_evaluations or the decision log, so a bug (or a hand edit)
  anywhere between the overlay and the feeds shows up here. Each rule has an is-empty test
  (compliance_rule_holds) in _compliance.yml.

    exclude_before_cohorts (customers)  an excluded customer has a cohort assignment or a live feed row;
    exclude_before_cohorts (sources)    an excluded source system appears in cohort_signal_buckets;
    suppress                            a live feed row (op <> exit) where the rule holds;
    flag_for_counsel                    a live feed row where the rule holds and no unexpired exception covers it;
    emit_with_fields                    a live feed row where the rule holds and a required field has no value.
-#}
{{ config(materialized='view') }}
-- depends_on: {{ ref('compliance_exceptions') }}
-- depends_on: {{ ref('registry_decision_safeguards') }}
-- depends_on: {{ ref('cohort_signal_buckets') }}
-- depends_on: {{ ref('cohort_assignments') }}
-- depends_on: {{ ref('registry_data_sources') }}
-- depends_on: {{ ref('customer_privacy_profile') }}

{%- set rules = marketing_signals.compliance_rules(['decision', 'emission', 'data_source', 'cohort_input']) -%}
{%- set customer_predicates = marketing_signals.compliance_customer_exclusion_predicates() -%}
{%- set source_predicates = marketing_signals.compliance_source_exclusion_predicates() -%}
{%- set exception_predicates = marketing_signals.compliance_exception_predicates('profile.subscriber_id', 'profile.customer_key') %}

with safeguards as (
{{ marketing_signals.compliance_safeguards_pivot() }}
),

live as (
    -- what subscribers hold now, with everything a predicate may read
    select
        feeds.subscriber_id,
        feeds.customer_key,
        feeds.feed_key,
        profile.*  exclude (customer_key),
        subscribers.decision_significance,
        subscribers.destination_kind,
        safeguards.* exclude (subscriber_id)
    from {{ ref('emission_feed_rows') }} as feeds
    left join {{ ref('customer_privacy_profile') }} as profile
        on profile.customer_key = feeds.customer_key
    inner join {{ ref('registry_subscribers') }} as subscribers
        on subscribers.subscriber_id = feeds.subscriber_id
    left join safeguards
        on safeguards.subscriber_id = feeds.subscriber_id
    where feeds.op <> 'exit'
)

{%- set selects = [] -%}
{%- for rule in rules -%}
  {%- set scope = marketing_signals.compliance_scope_predicate(rule.jurisdiction, rule.vertical) -%}
  {%- if rule.rule_id in customer_predicates -%}
    {%- do selects.append("select '" ~ rule.rule_id ~ "' as rule_id, cast(null as varchar) as subscriber_id, profile.customer_key, "
        ~ "'customer excluded before cohorts has a cohort assignment' as detail from " ~ ref('customer_privacy_profile') ~ " as profile "
        ~ "where " ~ scope ~ " and " ~ customer_predicates[rule.rule_id][0]
        ~ " and profile.customer_key in (select customer_key from " ~ ref('cohort_assignments') ~ ")") -%}
    {%- do selects.append("select '" ~ rule.rule_id ~ "' as rule_id, profile.subscriber_id, profile.customer_key, "
        ~ "'customer excluded before cohorts is in a feed' as detail from live as profile where " ~ scope ~ " and " ~ customer_predicates[rule.rule_id][0]) -%}
  {%- elif rule.rule_id in source_predicates -%}
    {%- if rule.vertical in ('all', var('marketing_signals__vertical')) -%}
    {%- do selects.append("select '" ~ rule.rule_id ~ "', cast(null as varchar), buckets.customer_key, "
        ~ "'events of excluded source ' || buckets.source_system || ' reached cohort_signal_buckets' from "
        ~ ref('cohort_signal_buckets') ~ " as buckets inner join " ~ ref('registry_data_sources') ~ " as sources "
        ~ "on sources.source_system = buckets.source_system where " ~ source_predicates[rule.rule_id]) -%}
    {%- endif -%}
  {%- elif rule.outcome in ('suppress', 'flag_for_counsel', 'emit_with_fields') -%}
    {%- set not_excepted = "not (" ~ exception_predicates.get(rule.rule_id, 'false') ~ ")" -%}
    {%- set predicate = marketing_signals.compliance_rule_predicate(rule.rule_id) | replace('subscribers.', 'profile.') | replace('safeguards.', 'profile.') -%}
    {%- if rule.outcome == 'suppress' -%}
      {%- set failing, detail = "true", "'live feed row although the rule suppresses it'" -%}
    {%- elif rule.outcome == 'flag_for_counsel' -%}
      {%- set failing, detail = not_excepted, "'live feed row flagged for counsel without an exception'" -%}
    {%- else -%}
      {%- set missing = [] -%}
      {%- for field in rule.required_fields -%}
        {%- set value = marketing_signals.compliance_field_value(field) | replace('safeguards.', 'profile.') -%}
        {%- do missing.append("(" ~ value ~ ") is null") -%}
      {%- endfor -%}
      {%- set failing = "(" ~ (missing | join(' or ') if missing else 'false') ~ ") and " ~ not_excepted -%}
      {%- set detail = "'live feed row without a required field'" -%}
    {%- endif -%}
    {%- do selects.append("select '" ~ rule.rule_id ~ "' as rule_id, profile.subscriber_id, profile.customer_key, " ~ detail
        ~ " as detail from live as profile where " ~ scope ~ " and coalesce((" ~ predicate ~ "), false) and " ~ failing) -%}
  {%- endif -%}
{%- endfor %}

{%- if selects | length == 0 %}
select cast(null as varchar) as rule_id, cast(null as varchar) as subscriber_id,
       cast(null as varchar) as customer_key, cast(null as varchar) as detail
where false
{%- else %}
{% for select_sql in selects %}
{{ select_sql }}
{{ 'union all' if not loop.last }}
{%- endfor %}
{%- endif %}
