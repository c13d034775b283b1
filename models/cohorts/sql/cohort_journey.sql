{#-
  Journey path cohorts: a customer's journey in a window is their channels ordered by first
  touch in the window (ties by channel name), capped at the first 4, as a path such as
  'ads > web > email > store'. Channel 'system' (identity plumbing, not a customer touch) is
  left out. The marketing_signals__journey_top_paths most common paths of each window (by
  customers; ties by path) are the cohorts (journey:ads>web>email>store); every other path
  is grouped into journey:other.

  Bucket rows carry no order inside a bucket, but first_occurred_at per customer × channel is
  exact (a window is a union of whole buckets), so first-touch order is exact too.

  Confidence: the share of the customer's events in the window that happened on the channels
  of their path, i.e. how much of their behaviour the (at most 4-step) path describes: 1.0 when
  every event is on a path channel, lower when later channels beyond the 4th carry weight.
  Customers in journey:other get the same measure for their own path.
-#}
{{ config(materialized='table') }}

{%- set revision = 1 %}
{%- set top_paths = var('marketing_signals__journey_top_paths', 12) | int %}
{%- set max_steps = 4 %}

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
    where eligible.method_id = 'journey'
),

signals as (
    select
        signals.customer_key,
        signals.window_id,
        signals.signal_type,
        signals.channel,
        signals.source_system,
        signals.event_count,
        signals.first_occurred_at
    from {{ ref('cohort_customer_window_signals') }} as signals
    inner join eligible
        on eligible.customer_key = signals.customer_key
       and eligible.window_id = signals.window_id
),

channel_touches as (
    select
        customer_key,
        window_id,
        channel,
        min(first_occurred_at) as first_touch_at,
        sum(event_count) as events
    from signals
    where channel is not null
      and channel <> 'system'
    group by 1, 2, 3
),

steps as (
    select
        customer_key,
        window_id,
        channel,
        events,
        row_number() over (partition by customer_key, window_id order by first_touch_at, channel) as step
    from channel_touches
),

paths as (
    select
        customer_key,
        window_id,
        string_agg(channel, ' > ' order by step) filter (where step <= {{ max_steps }}) as path,
        sum(events) filter (where step <= {{ max_steps }}) * 1.0 / sum(events) as path_event_share
    from steps
    group by 1, 2
),

path_ranks as (
    select
        window_id,
        path,
        row_number() over (partition by window_id order by count(*) desc, path) as path_rank
    from paths
    group by 1, 2
),

assigned as (
    select
        eligible.customer_key,
        eligible.window_id,
        case
            when path_ranks.path_rank <= {{ top_paths }} then 'journey:' || replace(paths.path, ' > ', '>')
            else 'journey:other'
        end as cohort_id,
        case
            when path_ranks.path_rank <= {{ top_paths }} then paths.path
            else 'Other paths (outside the top {{ top_paths }} of the window)'
        end as cohort_label,
        -- no path at all (only system events): other, with confidence 0
        coalesce(paths.path_event_share, 0.0) as path_event_share
    from eligible
    left join paths
        on paths.customer_key = eligible.customer_key
       and paths.window_id = eligible.window_id
    left join path_ranks
        on path_ranks.window_id = paths.window_id
       and path_ranks.path = paths.path
),

-- what drove the assignment: the customer's events on the channels of their path
path_evidence as (
    select
        signals.customer_key,
        signals.window_id,
        signals.signal_type,
        signals.source_system,
        signals.event_count as weight
    from signals
    inner join steps
        on steps.customer_key = signals.customer_key
       and steps.window_id = signals.window_id
       and steps.channel = signals.channel
    where steps.step <= {{ max_steps }}
),

-- customers without a path (only system events): all of their events
evidence as (
    select * from path_evidence
    union all
    select
        signals.customer_key,
        signals.window_id,
        signals.signal_type,
        signals.source_system,
        signals.event_count as weight
    from signals
    inner join (
        select customer_key, window_id from eligible
        except
        select customer_key, window_id from paths
    ) as without_path
        on without_path.customer_key = signals.customer_key
       and without_path.window_id = signals.window_id
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
    cast(assigned.customer_key as varchar) as customer_key,
    cast('journey' as varchar) as method_id,
    cast(assigned.window_id as varchar) as window_id,
    cast(assigned.cohort_id as varchar) as cohort_id,
    cast(assigned.cohort_label as varchar) as cohort_label,
    cast(greatest(0.0, least(1.0, assigned.path_event_share)) as double) as confidence,
    cast(coalesce(attribution.source_attribution, '{"signal_types": {}, "source_systems": {}}') as varchar) as source_attribution,
    cast({{ marketing_signals.cohort_sql_model_version('journey', revision) }} as varchar) as model_version,
    cast(run_context.as_of as timestamp) as as_of
from assigned
cross join run_context
left join attribution
    on attribution.customer_key = assigned.customer_key
   and attribution.window_id = assigned.window_id
