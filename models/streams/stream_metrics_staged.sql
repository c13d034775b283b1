{#- Usable stream values up to the run's as_of date (later days wait for a later run). -#}
{{ config(materialized='table') }}

select c.stream_id, c.location_id, c.period_start, c.value
from {{ ref('stream_metrics_checked') }} as c
cross join {{ ref('stream_run_context') }} as x
where c.quarantine_reason is null
  and c.period_start <= x.as_of_date
