{#-
  Accepted signals before identity resolution: every raw row that passed every rule, was
  captured by the latest run, and is the only row of its event id — plus, for event ids with
  several rows, the one row signal_capture_exceptions accepted.
-#}
{{ config(materialized='view') }}
{#- captured_through is inlined when the view is (re)created, i.e. on every run. -#}

{%- set columns = ['event_id', 'customer_id', 'signal_type', 'occurred_at', 'received_at', 'source_system',
                   'channel', 'location_id', 'jurisdiction', 'amount', 'properties'] -%}

select {{ columns | join(', ') }}
from {{ ref('int_signal_capture__checked') }} as checked
where checked.rule_reason is null
  and checked.received_at <= {{ marketing_signals.capture_run_bounds().captured_through }}
  and not exists (
      select 1 from {{ ref('signal_capture_exceptions') }} as exceptions
      where exceptions.event_key = checked.event_key
  )

union all

select {{ columns | join(', ') }}
from {{ ref('signal_capture_exceptions') }}
where disposition = 'accepted'
