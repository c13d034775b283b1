{#-
  Ingest health per signal type and arrival day: accepted and quarantined volume against a
  same-weekday trailing baseline (marketing_signals__ingest_baseline_days back), so weekly
  seasonality does not raise alarms. Every registry signal type gets a row for every day, so a
  type that stops arriving shows as volume_low / no_events instead of vanishing.
  The noise floor is Poisson (sd >= sqrt(mean)) so rare types do not alarm on small counts.
-#}
{{ config(materialized='table') }}

{%- set baseline_weeks = [(var('marketing_signals__ingest_baseline_days') / 7) | round(0, 'ceil') | int, 1] | max -%}
{#- written out in each OVER: Snowflake has no named WINDOW clause -#}
{%- set baseline_window -%}
partition by signal_type, day_of_week order by received_date rows between {{ baseline_weeks }} preceding and 1 preceding
{%- endset -%}
{%- set z_threshold = var('marketing_signals__ingest_volume_z_threshold') -%}

with arrivals_by_disposition as (
    select signal_type, cast(received_at as date) as received_date,
           count(*) as accepted_events, 0 as quarantined_events, max(received_at) as last_received_at
    from {{ ref('signals_staged') }}
    group by 1, 2
    union all
    select signal_type, cast(received_at as date), 0, count(*), cast(null as timestamp)
    from {{ ref('signals_quarantine') }}
    where received_at <= {{ dbt.current_timestamp() }}
    group by 1, 2
),

arrivals as (
    select
        signal_type,
        received_date,
        cast(sum(accepted_events) as bigint) as accepted_events,
        cast(sum(quarantined_events) as bigint) as quarantined_events,
        max(last_received_at) as last_received_at
    from arrivals_by_disposition
    group by 1, 2
),

bounds as (
    select min(received_date) as first_day, max(received_date) as last_day
    from arrivals
),

grid as (
    select registry.signal_type, spine.day as received_date
    from {{ ref('registry_signal_types') }} as registry
    cross join {{ marketing_signals.day_spine('(select first_day from bounds)', '(select last_day from bounds)') }} as spine
),

filled as (
    select
        grid.signal_type,
        grid.received_date,
        extract(dow from grid.received_date) as day_of_week,
        coalesce(arrivals.accepted_events, 0) as accepted_events,
        coalesce(arrivals.quarantined_events, 0) as quarantined_events,
        arrivals.last_received_at
    from grid
    left join arrivals
        on grid.signal_type = arrivals.signal_type
       and grid.received_date = arrivals.received_date
),

baselined as (
    select
        *,
        count(*) over ({{ baseline_window }}) as baseline_days,
        avg(accepted_events) over ({{ baseline_window }}) as baseline_mean,
        stddev_samp(accepted_events) over ({{ baseline_window }}) as baseline_stddev
    from filled
),

scored as (
    select
        *,
        (accepted_events - baseline_mean)
            / nullif(greatest(coalesce(baseline_stddev, 0), sqrt(baseline_mean)), 0) as volume_z
    from baselined
)

select
    signal_type,
    received_date,
    day_of_week,
    accepted_events,
    quarantined_events,
    cast(quarantined_events as double) / nullif(accepted_events + quarantined_events, 0) as quarantine_rate,
    last_received_at,
    baseline_days,
    baseline_mean,
    baseline_stddev,
    volume_z,
    case
        when baseline_days < {{ baseline_weeks }} then 'insufficient_history'
        when accepted_events = 0 and baseline_mean > 0 then 'no_events'
        when volume_z < -{{ z_threshold }} then 'volume_low'
        when volume_z > {{ z_threshold }} then 'volume_high'
        else 'ok'
    end as health_status
from scored
