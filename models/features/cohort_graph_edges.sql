{#-
  Customer graph for graph clustering: one row per referral event between two resolved
  customers (referrer → referred, both through the identity map). Identity links are already
  merged into customer_key by capture, so they add no edges here; self-loops and customers
  excluded before cohorts (compliance_cohort_exclusions) are dropped.
-#}
{{ config(materialized='table') }}

{%- set as_of = marketing_signals.cohort_as_of() %}

with referrals as (
    select
        customer_key as src_customer_key,
        {{ marketing_signals.json_text_field('properties', 'referred_customer_id') }} as referred_customer_id,
        occurred_at
    from {{ ref('signals_staged') }}
    where signal_type = 'referral_sent'
      and occurred_at <= {{ as_of }}
      and {{ marketing_signals.compliance_cohort_input_filter() }}
)

select
    referrals.src_customer_key,
    coalesce(identity.customer_key, referrals.referred_customer_id) as dst_customer_key,
    'referral' as edge_type,
    referrals.occurred_at
from referrals
left join {{ ref('identity_customer_map') }} as identity
    on identity.customer_id = referrals.referred_customer_id
where referrals.referred_customer_id is not null
  and coalesce(identity.customer_key, referrals.referred_customer_id) <> referrals.src_customer_key
  and {{ marketing_signals.compliance_cohort_input_filter('coalesce(identity.customer_key, referrals.referred_customer_id)', none) }}
