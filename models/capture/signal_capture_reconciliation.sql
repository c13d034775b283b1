{#-
  Exact reconciliation per signal type: raw rows = accepted + quarantined + pending, where
  pending rows arrived after the latest capture run started (the next run decides them).
  Counts come from the raw source and from the published relations, so a row lost or doubled
  between them shows up as unreconciled_rows <> 0 and fails the test on this model.
-#}
{{ config(materialized='table') }}

{%- set captured_through = marketing_signals.capture_run_bounds().captured_through -%}

with raw_counts as (
    select
        signal_type,
        count(*) as raw_rows,
        sum(case when {{ marketing_signals.capture_is_pending('received_at', captured_through) }} then 1 else 0 end) as pending_rows
    from {{ ref('stg_marketing_signals__events') }}
    group by signal_type
),

accepted_counts as (
    select signal_type, count(*) as accepted_rows
    from {{ ref('signals_staged') }}
    group by signal_type
),

quarantined_counts as (
    select signal_type, count(*) as quarantined_rows
    from {{ ref('signals_quarantine') }}
    group by signal_type
),

signal_types as (
    select signal_type from raw_counts
    union
    select signal_type from accepted_counts
    union
    select signal_type from quarantined_counts
),

counts as (
    select
        coalesce(signal_types.signal_type, '(null)') as signal_type,
        cast(coalesce(raw_counts.raw_rows, 0) as bigint) as raw_rows,
        cast(coalesce(accepted_counts.accepted_rows, 0) as bigint) as accepted_rows,
        cast(coalesce(quarantined_counts.quarantined_rows, 0) as bigint) as quarantined_rows,
        cast(coalesce(raw_counts.pending_rows, 0) as bigint) as pending_rows
    from signal_types
    left join raw_counts on signal_types.signal_type is not distinct from raw_counts.signal_type
    left join accepted_counts on signal_types.signal_type is not distinct from accepted_counts.signal_type
    left join quarantined_counts on signal_types.signal_type is not distinct from quarantined_counts.signal_type
)

select
    *,
    raw_rows - accepted_rows - quarantined_rows - pending_rows as unreconciled_rows
from counts
