{#-
  Funnel stage cohorts: the deepest funnel stage (browse < search < cart < purchase) each
  customer eligible for funnel reached in a window, from registry_signal_types.funnel_stage,
  and the drop-off stage (the next one, not reached; none after purchase). Customers whose
  events in the window are all non-funnel signals get funnel:none (dropped before browse).

  Confidence follows registry_cohort_methods: 1.0 when the deepest stage was last reached at
  as_of, decaying linearly to 0.5 when it was last reached at the start of the window. The
  lifetime window has no fixed length, so it decays over the customer's own active span (first
  event to as_of). funnel:none decays in the same way from the customer's last event.
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
    where eligible.method_id = 'funnel'
),

-- the stage order; registry_signal_types says which signal types evidence each stage
funnel_stages as (
    select * from (values
        ('none', 0, 'browse', 'No funnel step, dropped before browse'),
        ('browse', 1, 'search', 'Reached browse, dropped before search'),
        ('search', 2, 'cart', 'Reached search, dropped before cart'),
        ('cart', 3, 'purchase', 'Reached cart, dropped before purchase'),
        ('purchase', 4, null, 'Reached purchase')
    ) as t (stage, stage_rank, drop_off_stage, stage_label)
),

signals as (
    select
        signals.customer_key,
        signals.window_id,
        signals.signal_type,
        signals.source_system,
        signals.event_count,
        signals.last_occurred_at,
        coalesce(funnel_stages.stage_rank, 0) as stage_rank
    from {{ ref('cohort_customer_window_signals') }} as signals
    inner join eligible
        on eligible.customer_key = signals.customer_key
       and eligible.window_id = signals.window_id
    left join {{ ref('registry_signal_types') }} as signal_types
        on signal_types.signal_type = signals.signal_type
    left join funnel_stages
        on funnel_stages.stage = signal_types.funnel_stage
),

deepest as (
    select customer_key, window_id, max(stage_rank) as stage_rank
    from signals
    group by 1, 2
),

stage_reached as (
    select
        deepest.customer_key,
        deepest.window_id,
        deepest.stage_rank,
        -- last time the deepest stage was reached (last event of any kind for none)
        max(signals.last_occurred_at) as reached_at
    from deepest
    inner join signals
        on signals.customer_key = deepest.customer_key
       and signals.window_id = deepest.window_id
       and signals.stage_rank = deepest.stage_rank
    group by 1, 2, 3
),

assigned as (
    select
        stage_reached.customer_key,
        stage_reached.window_id,
        stage_reached.stage_rank,
        funnel_stages.stage,
        funnel_stages.stage_label,
        {{ dbt.datediff('stage_reached.reached_at', 'run_context.as_of', 'second') }} / 3600.0 as age_hours,
        coalesce(
            cast(windows.window_hours as double),
            {{ dbt.datediff('customers.first_occurred_at', 'run_context.as_of', 'second') }} / 3600.0
        ) as span_hours
    from stage_reached
    cross join run_context
    inner join funnel_stages
        on funnel_stages.stage_rank = stage_reached.stage_rank
    inner join {{ ref('registry_windows') }} as windows
        on windows.window_id = stage_reached.window_id
    inner join {{ ref('cohort_customer_windows') }} as customers
        on customers.customer_key = stage_reached.customer_key
       and customers.window_id = stage_reached.window_id
),

-- what drove the assignment: the events of the deepest stage reached
evidence as (
    select
        signals.customer_key,
        signals.window_id,
        signals.signal_type,
        signals.source_system,
        signals.event_count as weight
    from signals
    inner join deepest
        on deepest.customer_key = signals.customer_key
       and deepest.window_id = signals.window_id
       and deepest.stage_rank = signals.stage_rank
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
    cast('funnel' as varchar) as method_id,
    cast(assigned.window_id as varchar) as window_id,
    cast('funnel:' || assigned.stage as varchar) as cohort_id,
    cast(assigned.stage_label as varchar) as cohort_label,
    cast(
        case
            when assigned.span_hours <= 0 then 1.0
            else 1.0 - 0.5 * greatest(0.0, least(1.0, assigned.age_hours / assigned.span_hours))
        end
    as double) as confidence,
    cast(coalesce(attribution.source_attribution, '{"signal_types": {}, "source_systems": {}}') as varchar) as source_attribution,
    cast({{ marketing_signals.cohort_sql_model_version('funnel', revision) }} as varchar) as model_version,
    cast(run_context.as_of as timestamp) as as_of
from assigned
cross join run_context
left join attribution
    on attribution.customer_key = assigned.customer_key
   and attribution.window_id = assigned.window_id
