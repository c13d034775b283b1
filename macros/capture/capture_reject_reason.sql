{#-
  The first capture rule a typed raw event breaks, as a reason code (null = passes every rule).
  Rules run in a fixed order so each rejected row carries exactly one reason; the codes and
  their meaning are documented in seeds/registry_quarantine_reasons.csv (a test keeps the two
  in step). Duplicates are decided afterwards, among rows that pass (see signal_capture_exceptions).

  ev:  alias of the typed events relation (stg_marketing_signals__events columns)
  reg: alias of registry_signal_types, left-joined on signal_type
-#}
{% macro capture_reject_reason(ev='ev', reg='reg') %}
  {%- set id_pattern = var('marketing_signals__id_pattern') -%}
  case
    when {{ ev }}.event_id is null then 'missing_event_id'
    when not {{ marketing_signals.matches_pattern(ev ~ '.event_id', id_pattern) }} then 'malformed_event_id'
    when {{ ev }}.customer_id is null then 'missing_customer_id'
    when not {{ marketing_signals.matches_pattern(ev ~ '.customer_id', id_pattern) }} then 'malformed_customer_id'
    when {{ reg }}.signal_type is null then 'unknown_signal_type'
    when {{ ev }}.occurred_at is null then 'missing_occurred_at'
    when {{ ev }}.received_at is null then 'missing_received_at'
    when {{ ev }}.occurred_at < cast('{{ var("marketing_signals__event_time_floor") }}' as timestamp)
      then 'occurred_before_floor'
    when {{ ev }}.occurred_at > {{ dbt.dateadd('hour', var('marketing_signals__future_tolerance_hours'), ev ~ '.received_at') }}
      then 'occurred_in_future'
    when {{ ev }}.properties is not null and not {{ marketing_signals.is_json_object(ev ~ '.properties') }}
      then 'unparseable_properties'
    when {{ ev }}.amount_is_invalid then 'invalid_amount'
    when abs({{ ev }}.amount) > {{ var('marketing_signals__max_abs_amount') }} then 'amount_out_of_range'
    when {{ ev }}.amount < 0 and not {{ reg }}.allows_negative_amount then 'negative_amount'
    when {{ ev }}.amount is null and {{ reg }}.requires_amount then 'missing_amount'
    when {{ reg }}.is_identity_event
      and not coalesce({{ marketing_signals.matches_pattern(
            marketing_signals.json_text_field(ev ~ '.properties', 'linked_customer_id'), id_pattern) }}, false)
      then 'invalid_identity_link'
  end
{%- endmacro %}
