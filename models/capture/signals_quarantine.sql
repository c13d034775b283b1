{#- Rejected raw rows, each with exactly one reason code (see registry_quarantine_reasons). -#}
{{ config(materialized='view') }}

select
    exceptions.event_key || '#' || cast(exceptions.capture_ordinal as varchar) as capture_row_id,
    exceptions.reason_code,
    reasons.description as reason_description,
    exceptions.event_id,
    exceptions.customer_id,
    exceptions.signal_type,
    exceptions.occurred_at,
    exceptions.received_at,
    exceptions.source_system,
    exceptions.channel,
    exceptions.location_id,
    exceptions.jurisdiction,
    exceptions.amount,
    exceptions.properties
from {{ ref('signal_capture_exceptions') }} as exceptions
left join {{ ref('registry_quarantine_reasons') }} as reasons
    on exceptions.reason_code = reasons.reason_code
where exceptions.disposition = 'quarantined'
