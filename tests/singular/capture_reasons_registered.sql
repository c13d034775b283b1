-- Guards: every reason code the capture rules can emit is documented in registry_quarantine_reasons
-- (and nothing in the registry is a code capture can never produce). Returns the mismatches.
{%- set emitted = ['missing_event_id', 'malformed_event_id', 'missing_customer_id', 'malformed_customer_id',
                   'unknown_signal_type', 'missing_occurred_at', 'missing_received_at', 'occurred_before_floor',
                   'occurred_in_future', 'unparseable_properties', 'invalid_amount', 'amount_out_of_range',
                   'negative_amount', 'missing_amount', 'invalid_identity_link', 'received_in_future',
                   'duplicate_event_id'] %}
with emitted as (
    {% for code in emitted %}select '{{ code }}' as reason_code{{ ' union all ' if not loop.last }}{% endfor %}
)
select coalesce(e.reason_code, r.reason_code) as reason_code,
       case when r.reason_code is null then 'emitted but not registered' else 'registered but never emitted' end as problem
from emitted e
full outer join {{ ref('registry_quarantine_reasons') }} r on e.reason_code = r.reason_code
where e.reason_code is null or r.reason_code is null
