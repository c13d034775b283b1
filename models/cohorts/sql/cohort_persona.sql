{#-
  Rule-based personas. The rules are rows of registry_personas (one row per predicate:
  feature, operator, threshold, weight), evaluated here by joins, so adding or changing a
  persona is a CSV change and `dbt build`, never a code change.

  Features a predicate can test, per customer × window:
    <kind>:<value>[|<value>...]_share  share of the customer's events in the window whose
        <kind> (signal_type, channel, source_system or category) is one of the listed values;
        category shares are over the events that carry a category (commerce events), the
        others over all events. e.g. channel:store_share, category:toys|kids|sports_share.
    event_count, purchase_count, purchase_amount, return_count, distinct_signal_types
        from cohort_customer_windows;
    days_since_last_event, days_since_first_event  days from the customer's last / first
        event in the window to as_of.
  An unknown feature evaluates to null and never matches (the seed's tests reject it).

  A persona's match share is the weight of its satisfied predicates over the weight of all its
  predicates; it matches when the share reaches its min_match_share. Each customer gets the
  matching persona with the highest share (ties: lower priority number first, then
  persona_id); confidence = that share. Customers matching none are persona:unclassified with
  confidence 1 - the best share any persona reached (how clearly no persona fits).

  Stickiness: a customer keeps the persona they currently hold (cohort_membership_history) for
  as long as it still matches, even when another persona now scores a higher share; a
  transition happens when the held persona stops matching. Without it, customers whose shares
  sit near two personas' thresholds flap between them from one refresh to the next. The rule
  is a fixpoint: re-running with the result as the held persona reproduces the result, so a
  full refresh equals the incremental one.
-#}
{{ config(materialized='table') }}

{%- set revision = 2 %}
{#- unit tests have no `this` and no history -#}
{%- set history = adapter.get_relation(database=this.database, schema=generate_schema_name('membership', model),
                                       identifier='cohort_membership_history') if execute and this is not none else none %}

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
    where eligible.method_id = 'persona'
),

rules as (
    select
        persona_id,
        persona_label,
        priority,
        min_match_share,
        feature,
        operator,
        cast(threshold as double) as threshold,
        cast(weight as double) as weight,
        case when feature like '%:%' then split_part(feature, ':', 1) end as feature_kind,
        case
            when feature like '%:%'
                then string_split(regexp_replace(split_part(feature, ':', 2), '_share$', ''), '|')
        end as feature_values
    from {{ ref('registry_personas') }}
),

share_features as (
    select distinct feature, feature_kind, unnest(feature_values) as feature_value
    from rules
    where feature_kind is not null
),

signals as (
    select
        signals.customer_key,
        signals.window_id,
        signals.signal_type,
        signals.channel,
        signals.source_system,
        signals.category,
        signals.event_count
    from {{ ref('cohort_customer_window_signals') }} as signals
    inner join eligible
        on eligible.customer_key = signals.customer_key
       and eligible.window_id = signals.window_id
),

signal_values as (
    select customer_key, window_id, 'signal_type' as feature_kind, signal_type as feature_value,
           signal_type, source_system, event_count
    from signals
    union all
    select customer_key, window_id, 'channel' as feature_kind, channel as feature_value,
           signal_type, source_system, event_count
    from signals
    union all
    select customer_key, window_id, 'source_system' as feature_kind, source_system as feature_value,
           signal_type, source_system, event_count
    from signals
    union all
    select customer_key, window_id, 'category' as feature_kind, category as feature_value,
           signal_type, source_system, event_count
    from signals
    where category is not null
),

share_counts as (
    select
        signal_values.customer_key,
        signal_values.window_id,
        share_features.feature,
        sum(signal_values.event_count) as events
    from signal_values
    inner join share_features
        on share_features.feature_kind = signal_values.feature_kind
       and share_features.feature_value = signal_values.feature_value
    group by 1, 2, 3
),

categorised as (
    select customer_key, window_id, sum(event_count) as events
    from signals
    where category is not null
    group by 1, 2
),

customer_features as (
    select
        eligible.customer_key,
        eligible.window_id,
        customers.event_count,
        customers.purchase_count,
        customers.purchase_amount,
        customers.return_count,
        customers.distinct_signal_types,
        {{ dbt.datediff('customers.last_occurred_at', 'run_context.as_of', 'second') }} / 86400.0 as days_since_last_event,
        {{ dbt.datediff('customers.first_occurred_at', 'run_context.as_of', 'second') }} / 86400.0 as days_since_first_event,
        coalesce(categorised.events, 0) as categorised_events
    from eligible
    cross join run_context
    inner join {{ ref('cohort_customer_windows') }} as customers
        on customers.customer_key = eligible.customer_key
       and customers.window_id = eligible.window_id
    left join categorised
        on categorised.customer_key = eligible.customer_key
       and categorised.window_id = eligible.window_id
),

predicates as (
    select
        customer_features.customer_key,
        customer_features.window_id,
        rules.persona_id,
        rules.feature,
        rules.feature_kind,
        rules.feature_values,
        rules.operator,
        rules.threshold,
        rules.weight,
        case
            when rules.feature_kind = 'category'
                then coalesce(share_counts.events, 0) * 1.0 / nullif(customer_features.categorised_events, 0)
            when rules.feature_kind is not null
                then coalesce(share_counts.events, 0) * 1.0 / nullif(customer_features.event_count, 0)
            when rules.feature = 'event_count' then cast(customer_features.event_count as double)
            when rules.feature = 'purchase_count' then cast(customer_features.purchase_count as double)
            when rules.feature = 'purchase_amount' then cast(customer_features.purchase_amount as double)
            when rules.feature = 'return_count' then cast(customer_features.return_count as double)
            when rules.feature = 'distinct_signal_types' then cast(customer_features.distinct_signal_types as double)
            when rules.feature = 'days_since_last_event' then customer_features.days_since_last_event
            when rules.feature = 'days_since_first_event' then customer_features.days_since_first_event
        end as feature_value
    from customer_features
    cross join rules
    left join share_counts
        on share_counts.customer_key = customer_features.customer_key
       and share_counts.window_id = customer_features.window_id
       and share_counts.feature = rules.feature
),

evaluated as (
    select
        *,
        coalesce(case operator
            when '>=' then feature_value >= threshold
            when '>' then feature_value > threshold
            when '<=' then feature_value <= threshold
            when '<' then feature_value < threshold
            when '=' then feature_value = threshold
        end, false) as is_satisfied
    from predicates
),

persona_scores as (
    select
        evaluated.customer_key,
        evaluated.window_id,
        evaluated.persona_id,
        sum(case when evaluated.is_satisfied then evaluated.weight else 0 end)
            / nullif(sum(evaluated.weight), 0) as match_share
    from evaluated
    group by 1, 2, 3
),

personas as (
    select
        persona_id,
        min(persona_label) as persona_label,
        min(priority) as priority,
        min(min_match_share) as min_match_share
    from rules
    group by 1
),

held as (
    -- the persona each customer holds now, per window (none before the first membership)
    {%- if history is none %}
    select cast(null as varchar) as customer_key, cast(null as varchar) as window_id,
           cast(null as varchar) as persona_id
    where false
    {%- else %}
    select customer_key, window_id, replace(cohort_id, 'persona:', '') as persona_id
    from {{ history }}
    where is_current and method_id = 'persona' and cohort_id <> 'persona:unclassified'
    {%- endif %}
),

ranked as (
    select
        persona_scores.customer_key,
        persona_scores.window_id,
        persona_scores.persona_id,
        personas.persona_label,
        persona_scores.match_share,
        persona_scores.match_share >= personas.min_match_share as is_match,
        row_number() over (
            partition by persona_scores.customer_key, persona_scores.window_id
            order by (persona_scores.match_share >= personas.min_match_share) desc,
                     -- the held persona wins among matching ones only
                     (held.persona_id is not null
                      and persona_scores.match_share >= personas.min_match_share) desc,
                     persona_scores.match_share desc, personas.priority, persona_scores.persona_id
        ) as persona_rank
    from persona_scores
    inner join personas
        on personas.persona_id = persona_scores.persona_id
    left join held
        on held.customer_key = persona_scores.customer_key
       and held.window_id = persona_scores.window_id
       and held.persona_id = persona_scores.persona_id
),

assigned as (
    select
        eligible.customer_key,
        eligible.window_id,
        case when ranked.is_match then ranked.persona_id end as persona_id,
        case when ranked.is_match then 'persona:' || ranked.persona_id else 'persona:unclassified' end as cohort_id,
        case when ranked.is_match then ranked.persona_label else 'Unclassified' end as cohort_label,
        case when ranked.is_match then ranked.match_share else 1.0 - coalesce(ranked.match_share, 0.0) end as confidence
    from eligible
    left join ranked
        on ranked.customer_key = eligible.customer_key
       and ranked.window_id = eligible.window_id
       and ranked.persona_rank = 1
),

-- what drove the assignment: the events counted by the satisfied predicates of the assigned
-- persona, weighted by the predicate weight (purchase_* count purchases, return_count returns,
-- the other whole-customer features all events). Predicates on the absence of behaviour
-- (< and <=) add no events.
satisfied as (
    select
        evaluated.customer_key,
        evaluated.window_id,
        evaluated.feature,
        evaluated.feature_kind,
        evaluated.feature_values,
        evaluated.weight
    from evaluated
    inner join assigned
        on assigned.customer_key = evaluated.customer_key
       and assigned.window_id = evaluated.window_id
       and assigned.persona_id = evaluated.persona_id
    where evaluated.is_satisfied
      and evaluated.operator not in ('<', '<=')
),

satisfied_values as (
    select customer_key, window_id, feature_kind, unnest(feature_values) as feature_value, weight
    from satisfied
    where feature_kind is not null
),

predicate_evidence as (
    select
        signal_values.customer_key,
        signal_values.window_id,
        signal_values.signal_type,
        signal_values.source_system,
        signal_values.event_count * satisfied_values.weight as weight
    from satisfied_values
    inner join signal_values
        on signal_values.customer_key = satisfied_values.customer_key
       and signal_values.window_id = satisfied_values.window_id
       and signal_values.feature_kind = satisfied_values.feature_kind
       and signal_values.feature_value = satisfied_values.feature_value
    union all
    select
        signals.customer_key,
        signals.window_id,
        signals.signal_type,
        signals.source_system,
        signals.event_count * satisfied.weight as weight
    from satisfied
    inner join signals
        on signals.customer_key = satisfied.customer_key
       and signals.window_id = satisfied.window_id
    where satisfied.feature_kind is null
      and case satisfied.feature
            when 'purchase_count' then signals.signal_type = 'purchase'
            when 'purchase_amount' then signals.signal_type = 'purchase'
            when 'return_count' then signals.signal_type = 'product_return'
            else true
          end
),

-- customers without evidence (unclassified, or only satisfied absence predicates): all events
evidence as (
    select * from predicate_evidence
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
        select customer_key, window_id from predicate_evidence
    ) as without_evidence
        on without_evidence.customer_key = signals.customer_key
       and without_evidence.window_id = signals.window_id
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
    cast('persona' as varchar) as method_id,
    cast(assigned.window_id as varchar) as window_id,
    cast(assigned.cohort_id as varchar) as cohort_id,
    cast(assigned.cohort_label as varchar) as cohort_label,
    cast(greatest(0.0, least(1.0, assigned.confidence)) as double) as confidence,
    cast(coalesce(attribution.source_attribution, '{"signal_types": {}, "source_systems": {}}') as varchar) as source_attribution,
    cast({{ marketing_signals.cohort_sql_model_version('persona', revision) }} as varchar) as model_version,
    cast(run_context.as_of as timestamp) as as_of
from assigned
cross join run_context
left join attribution
    on attribution.customer_key = assigned.customer_key
   and attribution.window_id = assigned.window_id
