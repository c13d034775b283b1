{#-
  Customers that meet a method's per-customer minimums (registry_cohort_methods:
  min_events_per_customer, min_distinct_signal_types) in a live window. Every method scores
  only these; the rest are counted with their reason in cohort_coverage.
-#}
{{ config(materialized='view') }}

select
    methods.method_id,
    customers.window_id,
    customers.customer_key,
    customers.event_count,
    customers.distinct_signal_types
from {{ ref('cohort_customer_windows') }} as customers
inner join {{ ref('registry_cohort_methods') }} as methods
    on customers.event_count >= methods.min_events_per_customer
   and customers.distinct_signal_types >= methods.min_distinct_signal_types
