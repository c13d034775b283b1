{#-
  RFM segments: recency (hours from the last purchase to as_of), frequency (purchases) and
  monetary value (purchase amount) of every customer eligible for rfm in a window, scored 1..5
  in quintiles within the window over the customers with at least one purchase there, and
  mapped to a named segment by recency score × FM score (registry_rfm_segments, editable by
  operators). Customers without a purchase in the window get rfm:no_purchase_in_window.

  Quintiles keep ties together: a customer's score is the quintile of the first customer of its
  tie group, 1 + floor(5 × (rank - 1) / n), i.e. ntile(5) made deterministic for equal values
  (most customers buy once, and ntile would split them arbitrarily). Score 5 = most recent,
  most frequent, highest spend. FM score = ceil((F + M) / 2).

  Confidence: for each of R, F and M the customer occupies the percentile interval of its tie
  group; the distance of its midpoint from the nearest inner edge of its score band (where the
  neighbouring score starts: score 1 has only an upper edge, score 5 only a lower one), over
  half the band width and capped at 1, is 1 in the middle of the band (or for a tie group that
  fills its band) and 0 on a boundary. The confidence is the smallest of the three (the nearest
  boundary overall). No purchase in the window: confidence 1 (a fact, not a score).
-#}
{{ config(materialized='table') }}

{%- set revision = 1 %}

with run_context as (
    select as_of from {{ ref('cohort_run_context') }}
),

eligible as (
    select eligible.window_id, eligible.customer_key
    from {{ ref('cohort_eligible_customers') }} as eligible
    inner join {{ ref('cohort_sufficiency') }} as sufficiency
        on sufficiency.method_id = eligible.method_id
       and sufficiency.window_id = eligible.window_id
       and sufficiency.status = 'sufficient'
    where eligible.method_id = 'rfm'
),

customers as (
    select
        eligible.window_id,
        eligible.customer_key,
        windows.purchase_count,
        windows.purchase_amount,
        {{ dbt.datediff('windows.last_purchase_at', 'run_context.as_of', 'second') }} / 3600.0 as recency_hours
    from eligible
    inner join {{ ref('cohort_customer_windows') }} as windows
        on windows.customer_key = eligible.customer_key
       and windows.window_id = eligible.window_id
    cross join run_context
),

purchasers as (
    select
        window_id,
        customer_key,
        purchase_count,
        purchase_amount,
        recency_hours,
        count(*) over (partition by window_id) as n_purchasers,
        -- older last purchase = lower rank = lower score
        rank() over (partition by window_id order by recency_hours desc) as r_rank,
        count(*) over (partition by window_id, recency_hours) as r_ties,
        rank() over (partition by window_id order by purchase_count) as f_rank,
        count(*) over (partition by window_id, purchase_count) as f_ties,
        rank() over (partition by window_id order by purchase_amount) as m_rank,
        count(*) over (partition by window_id, purchase_amount) as m_ties
    from customers
    where purchase_count > 0
),

-- each customer's tie group covers ranks [lo, hi) out of n (percentiles lo/n .. hi/n); the
-- score is the quintile the group starts in. Kept in whole ranks so the arithmetic is exact.
positions as (
    select
        window_id,
        customer_key,
        {%- for d in ['r', 'f', 'm'] %}
        cast(1 + floor(5.0 * ({{ d }}_rank - 1) / n_purchasers) as integer) as {{ d }}_score,
        {{ d }}_rank - 1 as {{ d }}_lo,
        {{ d }}_rank - 1 + {{ d }}_ties as {{ d }}_hi{{ ',' if not loop.last }}
        {%- endfor %}
    from purchasers
),

-- each score's band: from the first to the last customer holding that score in the window
bands as (
    select
        *,
        {%- for d in ['r', 'f', 'm'] %}
        min({{ d }}_lo) over (partition by window_id, {{ d }}_score) as {{ d }}_band_lo,
        max({{ d }}_hi) over (partition by window_id, {{ d }}_score) as {{ d }}_band_hi{{ ',' if not loop.last }}
        {%- endfor %}
    from positions
),

-- distance of the group's midpoint (lo + hi) / 2 from the band's inner edges over half the
-- band width, i.e. (2 × edge distance) / band width, in whole ranks
scored as (
    select
        window_id,
        customer_key,
        r_score,
        f_score,
        m_score,
        cast(floor((f_score + m_score + 1) / 2.0) as integer) as fm_score,
        {%- for d in ['r', 'f', 'm'] %}
        {%- set to_upper = '(2 * ' ~ d ~ '_band_hi - ' ~ d ~ '_lo - ' ~ d ~ '_hi)' %}
        {%- set to_lower = '(' ~ d ~ '_lo + ' ~ d ~ '_hi - 2 * ' ~ d ~ '_band_lo)' %}
        least(1.0, 1.0 * case
            when {{ d }}_score = 1 then {{ to_upper }}
            when {{ d }}_score = 5 then {{ to_lower }}
            else least({{ to_upper }}, {{ to_lower }})
        end / ({{ d }}_band_hi - {{ d }}_band_lo)) as {{ d }}_confidence{{ ',' if not loop.last }}
        {%- endfor %}
    from bands
),

segments as (
    select
        customers.window_id,
        customers.customer_key,
        customers.purchase_count > 0 as has_purchase,
        case
            when customers.purchase_count = 0 then 'rfm:no_purchase_in_window'
            when segment_map.segment_id is not null then 'rfm:' || segment_map.segment_id
        end as cohort_id,
        case
            when customers.purchase_count = 0 then 'No purchase in window'
            else segment_map.segment_label
                || ' (R' || cast(scored.r_score as varchar)
                || ' F' || cast(scored.f_score as varchar)
                || ' M' || cast(scored.m_score as varchar) || ')'
        end as cohort_label,
        case
            when customers.purchase_count = 0 then 1.0
            else least(scored.r_confidence, scored.f_confidence, scored.m_confidence)
        end as confidence
    from customers
    left join scored
        on scored.customer_key = customers.customer_key
       and scored.window_id = customers.window_id
    left join {{ ref('registry_rfm_segments') }} as segment_map
        on segment_map.r_score = scored.r_score
       and segment_map.fm_score = scored.fm_score
),

-- what drove the assignment: the customer's purchases (all events when none in the window)
evidence as (
    select
        signals.customer_key,
        signals.window_id,
        signals.signal_type,
        signals.source_system,
        signals.event_count as weight
    from {{ ref('cohort_customer_window_signals') }} as signals
    inner join segments
        on segments.customer_key = signals.customer_key
       and segments.window_id = signals.window_id
    where signals.signal_type = 'purchase' or not segments.has_purchase
),

{#- The same five CTEs build source_attribution in every SQL cohort method. -#}
attribution_items as (
    select customer_key, window_id, 'signal_types' as part, signal_type as item, sum(weight) as weight
    from evidence
    group by 1, 2, 3, 4
    union all
    select customer_key, window_id, 'source_systems' as part, source_system as item, sum(weight) as weight
    from evidence
    group by 1, 2, 3, 4
),

attribution_top as (
    select
        customer_key,
        window_id,
        part,
        item,
        weight,
        row_number() over (partition by customer_key, window_id, part order by weight desc, item) as item_rank
    from attribution_items
    where weight > 0 and item is not null
),

attribution_rounded as (
    select
        customer_key,
        window_id,
        part,
        item,
        item_rank,
        round(weight / sum(weight) over (partition by customer_key, window_id, part), 4) as share
    from attribution_top
    where item_rank <= 5
),

attribution_shares as (
    -- the largest item absorbs the rounding so the printed weights of a part sum to exactly 1
    select
        customer_key,
        window_id,
        part,
        item,
        item_rank,
        case
            when item_rank = 1
                then round(1 - (sum(share) over (partition by customer_key, window_id, part) - share), 4)
            else share
        end as share
    from attribution_rounded
),

attribution as (
    select
        customer_key,
        window_id,
        '{"signal_types": {'
            || coalesce(string_agg(cast(to_json(item) as varchar) || ': ' || cast(cast(share as double) as varchar), ', ' order by item_rank)
                        filter (where part = 'signal_types'), '')
            || '}, "source_systems": {'
            || coalesce(string_agg(cast(to_json(item) as varchar) || ': ' || cast(cast(share as double) as varchar), ', ' order by item_rank)
                        filter (where part = 'source_systems'), '')
            || '}}' as source_attribution
    from attribution_shares
    group by 1, 2
)

select
    cast(segments.customer_key as varchar) as customer_key,
    cast('rfm' as varchar) as method_id,
    cast(segments.window_id as varchar) as window_id,
    cast(segments.cohort_id as varchar) as cohort_id,
    cast(segments.cohort_label as varchar) as cohort_label,
    cast(greatest(0.0, least(1.0, segments.confidence)) as double) as confidence,
    cast(coalesce(attribution.source_attribution, '{"signal_types": {}, "source_systems": {}}') as varchar) as source_attribution,
    cast({{ marketing_signals.cohort_sql_model_version('rfm', revision) }} as varchar) as model_version,
    cast(run_context.as_of as timestamp) as as_of
from segments
cross join run_context
left join attribution
    on attribution.customer_key = segments.customer_key
   and attribution.window_id = segments.window_id
