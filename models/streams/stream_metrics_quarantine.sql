{#- Stream rows that cannot be used, with the reason; nothing is dropped silently. -#}
{{ config(materialized='table') }}

select stream_id, location_id, period_start_raw, value_raw, quarantine_reason
from {{ ref('stream_metrics_checked') }}
where quarantine_reason is not null
