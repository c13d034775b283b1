{#-
  ORDER BY list that ranks rows sharing an event_key: rows that pass every rule first, then the
  earliest arrival, then every other column (a total order: identical rows are interchangeable,
  so the result never depends on physical order). `reason` is the row's rejection column.
-#}
{% macro capture_tie_break(reason='row_reason') -%}
    case when {{ reason }} is null then 0 else 1 end,
    received_at nulls last,
    occurred_at nulls last,
    customer_id nulls last,
    signal_type nulls last,
    source_system nulls last,
    channel nulls last,
    location_id nulls last,
    jurisdiction nulls last,
    amount nulls last,
    properties nulls last
{%- endmacro %}
