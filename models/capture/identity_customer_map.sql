{#-
  Identity resolution: raw customer ids joined by identity_link events form groups (connected
  components); each id maps to the group's smallest id, its stable customer_key. For every pair
  the latest link/unlink event (occurred_at, then received_at, then event_id) decides whether the
  pair is linked, so an unlink splits the group again. Link cycles are harmless (set semantics).
  Only ids with at least one live link appear; every other id is its own key.
-#}
{{ config(materialized='table') }}

with recursive

identity_events as (
    select
        customer_id,
        {{ marketing_signals.json_text_field('properties', 'linked_customer_id') }} as linked_customer_id,
        signal_type,
        occurred_at,
        received_at,
        event_id
    from {{ ref('int_signals__accepted') }}
    where signal_type in ('identity_link', 'identity_unlink')
),

pair_events as (
    select
        least(customer_id, linked_customer_id) as id_low,
        greatest(customer_id, linked_customer_id) as id_high,
        signal_type,
        occurred_at,
        received_at,
        event_id
    from identity_events
    where customer_id <> linked_customer_id
),

pair_state as (
    select id_low, id_high, signal_type = 'identity_link' as is_linked
    from pair_events
    qualify row_number() over (
        partition by id_low, id_high
        order by occurred_at desc, received_at desc, event_id desc
    ) = 1
),

edges as (
    select id_low as node, id_high as neighbour from pair_state where is_linked
    union all
    select id_high, id_low from pair_state where is_linked
),

reach (node, reached) as (
    select distinct node, node from edges
    union
    select edges.neighbour, reach.reached
    from reach
    inner join edges on reach.node = edges.node
),

components as (
    select node as customer_id, min(reached) as customer_key
    from reach
    group by node
)

select
    customer_id,
    customer_key,
    count(*) over (partition by customer_key) as identity_group_size
from components
