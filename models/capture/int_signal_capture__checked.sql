{#-
  Every raw event row with the first capture rule it breaks (rule_reason; null = passes).
  A view: the rules are a pure function of the row, the registry and the vars.
-#}
{{ config(materialized='view') }}

select
    ev.*,
    {{ marketing_signals.capture_reject_reason('ev', 'reg') }} as rule_reason
from {{ ref('stg_marketing_signals__events') }} as ev
left join {{ ref('registry_signal_types') }} as reg
    on ev.signal_type = reg.signal_type
