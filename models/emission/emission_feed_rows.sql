{#- Every row of the 8 subscriber feeds in one relation (for compliance_violations and reporting). -#}
{{ config(materialized='view') }}

{%- set feeds = ['offer_optimizer', 'journey_orchestrator', 'communication_broadcast', 'loyalty',
                 'measurement_attribution', 'local_context', 'local_sem', 'page_generator'] %}
{% for subscriber in feeds %}
select
    '{{ subscriber }}' as subscriber_id,
    feed_key, customer_key, method_id, window_id, cohort_id, cohort_label, confidence, is_holdout,
    op, attestation_id, changed_at, emitted_at, idempotency_key
from {{ ref('feed_' ~ subscriber) }}
{{ 'union all' if not loop.last }}
{% endfor %}
