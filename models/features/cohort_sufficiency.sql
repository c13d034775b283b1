{#-
  Data-sufficiency gate, one row per method × window (13 × 6): how many customers have events
  in the window, how many meet the method's per-customer minimums, and whether that reaches the
  method's min_customers (all from registry_cohort_methods). Methods skip insufficient
  combinations and cohort_coverage carries the reason — never a silent gap. Methods left out
  of the var marketing_signals__cohort_methods (null = all) are 'disabled' everywhere.
-#}
{{ config(materialized='table') }}

{%- set enabled = var('marketing_signals__cohort_methods', none) %}

with active as (
    select window_id, count(*) as customers_with_events
    from {{ ref('cohort_customer_windows') }}
    group by 1
),

eligible as (
    select method_id, window_id, count(*) as eligible_customers
    from {{ ref('cohort_eligible_customers') }}
    group by 1, 2
)

select
    methods.method_id,
    windows.window_id,
    cast(coalesce(active.customers_with_events, 0) as bigint) as customers_with_events,
    cast(coalesce(eligible.eligible_customers, 0) as bigint) as eligible_customers,
    cast(methods.min_customers as bigint) as min_customers,
    case
        {%- if enabled is not none %}
        when methods.method_id not in ({{ "'" ~ (enabled | join("', '")) ~ "'" }}) then 'disabled'
        {%- endif %}
        when coalesce(eligible.eligible_customers, 0) >= methods.min_customers then 'sufficient'
        else 'insufficient'
    end as status,
    case
        {%- if enabled is not none %}
        when methods.method_id not in ({{ "'" ~ (enabled | join("', '")) ~ "'" }}) then
        'disabled: not in var marketing_signals__cohort_methods'
        {%- endif %}
        when coalesce(eligible.eligible_customers, 0) < methods.min_customers then
        'insufficient_data: ' || cast(coalesce(eligible.eligible_customers, 0) as varchar)
        || ' customers have >= ' || cast(methods.min_events_per_customer as varchar)
        || ' events and >= ' || cast(methods.min_distinct_signal_types as varchar)
        || ' signal types in window ' || windows.window_id
        || '; ' || methods.method_id || ' needs >= ' || cast(methods.min_customers as varchar) || ' such customers'
    end as reason
from {{ ref('registry_cohort_methods') }} as methods
cross join {{ ref('registry_windows') }} as windows
left join active on active.window_id = windows.window_id
left join eligible
    on eligible.method_id = methods.method_id
   and eligible.window_id = windows.window_id
