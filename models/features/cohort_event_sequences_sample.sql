{#-
  Ordered event sequences of a deterministic sample of customers (about
  marketing_signals__cohort_fit_sample of them), for the methods that learn from order
  (word2vec). Sampling is by a hash of the raw customer id so the scan can drop rows early.
-#}
{{ config(materialized='table') }}

{%- set as_of = marketing_signals.cohort_as_of() -%}
{%- set per_million = var('marketing_signals__sequence_sample_per_million', 50000) %}

select
    customer_key,
    occurred_at,
    signal_type,
    {{ marketing_signals.json_text_field('properties', 'category') }} as category
from {{ ref('signals_staged') }}
where occurred_at <= {{ as_of }}
  and {{ marketing_signals.cohort_sample_predicate('customer_id', per_million) }}
  and {{ marketing_signals.compliance_cohort_input_filter() }}
