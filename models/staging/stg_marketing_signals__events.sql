{#-
  Raw events with types enforced and nothing dropped: values that do not convert become null
  (and are quarantined downstream with a reason). Ids are kept verbatim apart from blank -> null;
  signal types are trimmed and lower-cased. event_key gives every row a key, even without an id.
-#}
{%- set payload = ['customer_id', 'signal_type', 'occurred_at', 'received_at', 'source_system', 'channel',
                   'location_id', 'jurisdiction', 'amount', 'properties'] -%}

with typed as (
    select
        nullif(cast(event_id as varchar), '') as event_id,
        nullif(cast(customer_id as varchar), '') as customer_id,
        lower(trim(cast(signal_type as varchar))) as signal_type,
        {{ marketing_signals.try_cast('occurred_at', 'timestamp') }} as occurred_at,
        {{ marketing_signals.try_cast('received_at', 'timestamp') }} as received_at,
        cast(source_system as varchar) as source_system,
        cast(channel as varchar) as channel,
        cast(location_id as varchar) as location_id,
        cast(jurisdiction as varchar) as jurisdiction,
        {{ marketing_signals.try_cast('amount', 'double') }} as amount,
        (amount is not null and {{ marketing_signals.try_cast('amount', 'double') }} is null) as amount_is_invalid,
        nullif(cast(properties as varchar), '') as properties
    from {{ source('marketing_signals', 'events') }}
)

select
    case  -- a CASE, not coalesce: the md5 is computed only for rows without an id
        when event_id is null then 'missing:' || md5({{ marketing_signals.concat_ws_skip_nulls('|', payload) }})
        else event_id
    end as event_key,
    *
from typed
