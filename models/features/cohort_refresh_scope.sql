{#-
  The customers whose cohort features may have changed since the last completed refresh, with
  why (the transition reason codes are derived from these flags):
    has_new_signals     events received since the last watermark (minus the capture lookback,
                        so late loads are seen exactly as capture sees them), or events that
                        entered the windows because as_of advanced past them;
    has_aged_signals    stored events whose age crossed a bucket edge (window or anchor
                        boundary) between the two as_of values;
    has_consent_change  a new consent_change signal;
    has_identity_change the customer's key gained or lost raw ids (identity merge or split).
  A superset is harmless (re-scoring an unchanged customer reproduces the same rows); a missed
  customer is not, so every way a customer's buckets can change is listed. Only read in
  'incremental' mode; empty otherwise.
-#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('cohort_refresh_plan') }}
-- depends_on: {{ ref('signals_staged') }}
-- depends_on: {{ ref('identity_customer_map') }}
-- depends_on: {{ ref('signal_capture_runs') }}
-- depends_on: {{ ref('registry_windows') }}

{%- set mode = marketing_signals.cohort_refresh_mode() -%}
{%- set previous = marketing_signals.cohort_refresh_previous() -%}
{%- set stored_buckets = adapter.get_relation(database=this.database, schema=this.schema, identifier='cohort_signal_buckets') if execute else none -%}
{%- set stored_windows = adapter.get_relation(database=this.database, schema=this.schema, identifier='cohort_customer_windows') if execute else none -%}
{%- set stored_identity = adapter.get_relation(database=this.database, schema=this.schema, identifier='cohort_identity_keys') if execute else none -%}

{%- if mode != 'incremental' or stored_buckets is none or stored_windows is none %}

select
    cast(null as varchar) as customer_key,
    cast(null as boolean) as has_new_signals,
    cast(null as boolean) as has_aged_signals,
    cast(null as boolean) as has_consent_change,
    cast(null as boolean) as has_identity_change,
    cast(null as bigint) as previous_event_count
where false

{%- else %}
{%- set as_of = marketing_signals.cohort_as_of() -%}
{%- set prev_as_of = marketing_signals.timestamp_literal(previous.as_of) -%}
{%- set since = dbt.dateadd('hour', -1 * var('marketing_signals__capture_lookback_hours'),
                            marketing_signals.timestamp_literal(previous.captured_through)) -%}
{%- set edges = marketing_signals.cohort_time_buckets(marketing_signals.cohort_window_hours())
                | selectattr('hours_to') | map(attribute='hours_to') | list %}

with new_signals as (
    select
        customer_key,
        bool_or(signal_type = 'consent_change') as has_consent_change
    from {{ ref('signals_staged') }}
    where (received_at > {{ since }} and occurred_at <= {{ as_of }})
       or (occurred_at > {{ prev_as_of }} and occurred_at <= {{ as_of }})
    group by 1
),

aged as (
    -- a stored bucket row whose time span meets (previous as_of - edge, as_of - edge] for some
    -- edge holds an event that changed bucket (a conservative test on [first, last])
    select distinct customer_key
    from {{ stored_buckets }}
    where
    {%- for edge in edges %}
        (last_occurred_at > {{ dbt.dateadd('hour', -1 * edge, prev_as_of) }}
         and first_occurred_at <= {{ dbt.dateadd('hour', -1 * edge, as_of) }}){{ ' or' if not loop.last }}
    {%- endfor %}
),

identity_moves as (
    {%- if stored_identity is none %}
    select cast(null as varchar) as key_before, cast(null as varchar) as key_now where false
    {%- else %}
    -- a raw id whose key differs from the stored map: both keys change membership
    select
        coalesce(before.customer_key, before.customer_id, now.customer_id) as key_before,
        coalesce(now.customer_key, before.customer_id, now.customer_id) as key_now
    from {{ stored_identity }} as before
    full outer join {{ ref('identity_customer_map') }} as now
        on now.customer_id = before.customer_id
    where coalesce(before.customer_key, before.customer_id, now.customer_id)
          <> coalesce(now.customer_key, before.customer_id, now.customer_id)
    {%- endif %}
),

identity_changes as (
    select key_before as customer_key from identity_moves
    union
    select key_now from identity_moves
),

scoped as (
    select customer_key from new_signals
    union
    select customer_key from aged
    union
    select customer_key from identity_changes
)

select
    scoped.customer_key,
    new_signals.customer_key is not null as has_new_signals,
    aged.customer_key is not null as has_aged_signals,
    coalesce(new_signals.has_consent_change, false) as has_consent_change,
    identity_changes.customer_key is not null as has_identity_change,
    lifetime.event_count as previous_event_count
from scoped
left join new_signals on new_signals.customer_key = scoped.customer_key
left join aged on aged.customer_key = scoped.customer_key
left join identity_changes on identity_changes.customer_key = scoped.customer_key
left join {{ stored_windows }} as lifetime
    on lifetime.customer_key = scoped.customer_key
   and lifetime.window_id = 'lifetime'

{%- endif %}
