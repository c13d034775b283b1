{#-
  One row per customer (resolved customer_key) with what the compliance overlay needs, from
  the accepted signals up to as_of: jurisdiction and home location (the most frequent of the
  customer's events; ties to the smaller id), the latest explicit state per consent purpose,
  the effective state (explicit, else the jurisdiction's default from registry_jurisdictions),
  and whether any input came from a third-party enrichment source counsel has not reviewed.
  One grouped scan of signals_staged plus a pass over consent_change events.
-#}
{{ config(materialized='table') }}

{%- set as_of = marketing_signals.cohort_as_of() %}

with events as (
    select staged.customer_key, staged.location_id, staged.jurisdiction, staged.source_system
    from {{ ref('signals_staged') }} as staged
    where staged.occurred_at <= {{ as_of }}
),

per_location as (
    select
        events.customer_key,
        events.location_id,
        events.jurisdiction,
        count(*) as event_count,
        {{ dbt.bool_or("coalesce(sources.origin = 'third_party_enrichment' and not sources.counsel_reviewed, false)") }} as has_unreviewed_enrichment
    from events
    left join {{ ref('registry_data_sources') }} as sources
        on sources.source_system = events.source_system
    group by 1, 2, 3
),

ranked_location as (
    select
        customer_key,
        location_id,
        sum(event_count) as event_count,
        row_number() over (partition by customer_key order by sum(event_count) desc, location_id) as location_rank,
        sum(sum(event_count)) over (partition by customer_key) as customer_events
    from per_location
    where location_id is not null
    group by 1, 2
),

ranked_jurisdiction as (
    select
        customer_key,
        jurisdiction,
        row_number() over (partition by customer_key order by sum(event_count) desc, jurisdiction) as jurisdiction_rank
    from per_location
    where jurisdiction is not null
    group by 1, 2
),

customers as (
    select
        customer_key,
        sum(event_count) as event_count,
        coalesce({{ dbt.bool_or('has_unreviewed_enrichment') }}, false) as has_unreviewed_enrichment
    from per_location
    group by 1
),

consent_events as (
    select
        staged.customer_key,
        lower({{ marketing_signals.json_text_field('staged.properties', 'purpose') }}) as purpose,
        lower({{ marketing_signals.json_text_field('staged.properties', 'state') }}) as state,
        staged.occurred_at,
        staged.event_id
    from {{ ref('signals_staged') }} as staged
    where staged.signal_type = 'consent_change'
      and staged.occurred_at <= {{ as_of }}
),

latest_consent as (
    select customer_key, purpose, state, occurred_at
    from (
        select
            consent_events.*,
            row_number() over (partition by customer_key, purpose order by occurred_at desc, event_id desc) as recency
        from consent_events
        where purpose is not null and state is not null
    ) as ranked
    where recency = 1
),

explicit as (
    select
        customer_key,
        max(case when purpose = 'marketing' then state end) as marketing_state,
        max(case when purpose = 'marketing' then occurred_at end) as marketing_at,
        max(case when purpose = 'profiling' then state end) as profiling_state,
        max(case when purpose = 'profiling' then occurred_at end) as profiling_at,
        max(case when purpose = 'sale_share' then state end) as sale_share_state,
        max(case when purpose = 'sale_share' then occurred_at end) as sale_share_at,
        max(case when purpose = 'glba_sharing' then state end) as glba_sharing_state,
        max(case when purpose = 'glba_notice' and state in ('granted', 'delivered') then occurred_at end) as glba_notice_at,
        max(case when purpose = 'age_verification' then state end) as age_verification_state
    from latest_consent
    group by 1
)

select
    customers.customer_key,
    jurisdiction.jurisdiction,
    home.location_id as home_location_id,
    cast(home.event_count as double) / nullif(home.customer_events, 0) as home_location_share,
    cast(customers.event_count as bigint) as event_count,
    coalesce(explicit.marketing_state, jurisdictions.default_marketing_consent) as marketing_consent,
    explicit.marketing_at as marketing_consent_at,
    coalesce(explicit.profiling_state, jurisdictions.default_marketing_consent) as profiling_consent,
    explicit.profiling_at as profiling_consent_at,
    coalesce(explicit.sale_share_state, jurisdictions.default_marketing_consent) as sale_share_consent,
    explicit.sale_share_at as sale_share_consent_at,
    explicit.glba_sharing_state as glba_sharing_consent,
    explicit.glba_notice_at,
    coalesce(explicit.age_verification_state = 'granted', false) as age_verified,
    -- an explicit withdrawal of marketing or profiling consent: an objection to direct
    -- marketing where GDPR / UK GDPR Art. 21(2) applies (compliance_cohort_exclusions)
    coalesce(explicit.marketing_state = 'withdrawn' or explicit.profiling_state = 'withdrawn', false) as objected_to_direct_marketing,
    case
        when explicit.marketing_state = 'withdrawn' and explicit.profiling_state = 'withdrawn'
            then least(explicit.marketing_at, explicit.profiling_at)
        when explicit.marketing_state = 'withdrawn' then explicit.marketing_at
        when explicit.profiling_state = 'withdrawn' then explicit.profiling_at
    end as objected_at,
    customers.has_unreviewed_enrichment
from customers
left join ranked_location as home
    on home.customer_key = customers.customer_key
   and home.location_rank = 1
left join ranked_jurisdiction as jurisdiction
    on jurisdiction.customer_key = customers.customer_key
   and jurisdiction.jurisdiction_rank = 1
left join {{ ref('registry_jurisdictions') }} as jurisdictions
    on jurisdictions.jurisdiction_id = jurisdiction.jurisdiction
left join explicit
    on explicit.customer_key = customers.customer_key
