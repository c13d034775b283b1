{#-
  The capture decisions that are not "accept the only row of this event id": every rejected row
  with its reason, and every row of an event_key that has more than one raw row (duplicates),
  ranked so exactly one valid row per key is accepted. A small table (typically < 1% of raw):
  the accepted signals themselves stay in the raw table and are read through signals_staged.

  Incremental by event_key (delete+insert): a run decides the rows received since
  watermark - lookback, together with every earlier row of the keys they touch, so a late
  duplicate that sorts first still wins and a re-run rewrites identical rows.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='event_key',
    on_schema_change='fail'
) }}

{%- set bounds = marketing_signals.capture_run_bounds() -%}
{%- set captured_through = bounds.captured_through -%}
{%- set in_window -%}
    {%- if bounds.window_start == 'null' -%} true
    {%- else -%} (received_at is null or received_at >= {{ bounds.window_start }})
    {%- endif -%}
{%- endset -%}

with

multi_row_keys as (
    select event_key
    from {{ ref('stg_marketing_signals__events') }}
    where not coalesce({{ marketing_signals.capture_is_pending('received_at', captured_through) }}, false)
    {% if is_incremental() %}
      and event_key in (
          select event_key from {{ ref('stg_marketing_signals__events') }} where {{ in_window }}
      )
    {% endif %}
    group by event_key
    having count(*) > 1
),

candidates as (
    select
        checked.*,
        multi_row_keys.event_key is not null as is_multi_row_key,
        coalesce(
            checked.rule_reason,
            case when {{ marketing_signals.capture_is_received_in_future('checked.received_at', captured_through) }}
                 then 'received_in_future' end
        ) as row_reason
    from {{ ref('int_signal_capture__checked') }} as checked
    left join multi_row_keys
        on checked.event_key = multi_row_keys.event_key
    where not coalesce({{ marketing_signals.capture_is_pending('checked.received_at', captured_through) }}, false)
      and (
          multi_row_keys.event_key is not null
          or (
              {% if is_incremental() %}{{ in_window }} and{% endif %}
              (checked.rule_reason is not null
               or {{ marketing_signals.capture_is_received_in_future('checked.received_at', captured_through) }})
          )
      )
),

ranked as (
    select
        *,
        case
            when is_multi_row_key
                then row_number() over (partition by event_key order by {{ marketing_signals.capture_tie_break('row_reason') }})
            else 1
        end as capture_ordinal
    from candidates
)

select
    event_key,
    cast(capture_ordinal as bigint) as capture_ordinal,
    event_id,
    customer_id,
    signal_type,
    occurred_at,
    received_at,
    source_system,
    channel,
    location_id,
    jurisdiction,
    amount,
    amount_is_invalid,
    properties,
    is_multi_row_key,
    case when row_reason is null and capture_ordinal = 1 then 'accepted' else 'quarantined' end as disposition,
    coalesce(row_reason, case when capture_ordinal > 1 then 'duplicate_event_id' end) as reason_code
from ranked
