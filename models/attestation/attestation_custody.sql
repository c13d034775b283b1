{#-
  Chain of custody per customer with something to attest: how many accepted events up to
  as_of fed the decision, an order-independent digest of their event ids (macro set_digest),
  and the newest received_at among them, so an auditor can tie a decision to the exact
  captured input. One semi-joined scan of signals_staged.
-#}
{{ config(materialized='table') }}

{%- set as_of = marketing_signals.cohort_as_of() %}

select
    staged.customer_key,
    count(*) as input_event_count,
    {{ marketing_signals.set_digest('staged.event_id') }} as event_id_set_digest,
    max(staged.received_at) as newest_received_at
from {{ ref('signals_staged') }} as staged
where staged.occurred_at <= {{ as_of }}
  and staged.customer_key in (select customer_key from {{ ref('attestation_pending') }})
group by 1
