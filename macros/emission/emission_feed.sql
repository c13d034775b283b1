{#-
  Body of a subscriber feed (models/emission/feeds/feed_<subscriber>.sql): the latest outbox
  event per feed key of one subscriber, i.e. the rows it should hold (op enter or update) and
  recent exits kept as tombstones for marketing_signals__feed_tombstone_days, so a sync that
  missed a run still sees the exit. Built after the attestation batch is sealed, so every row's
  attestation_id is in attestation_ledger.
-#}
{% macro emission_feed(subscriber_id) %}
{%- set registry = ref('registry_subscribers') -%}
{%- set keyed = execute and run_query("select keyed_by from " ~ registry ~ " where subscriber_id = '" ~ subscriber_id ~ "'") -%}
{%- if execute and keyed.rows | length == 0 -%}
  {{ exceptions.raise_compiler_error("feed for unknown subscriber '" ~ subscriber_id ~ "': add it to registry_subscribers") }}
{%- endif -%}
{%- set by_location = execute and keyed.rows[0][0] == 'customer_location' %}
with latest as (
    select
        outbox.*,
        row_number() over (partition by outbox.feed_key order by outbox.emitted_at desc, outbox.recorded_at desc, outbox.idempotency_key desc) as recency
    from {{ ref('emission_outbox') }} as outbox
    where outbox.subscriber_id = '{{ subscriber_id }}'
),

plan as (
    select as_of from {{ ref('cohort_refresh_plan') }}
)

select
    latest.feed_key,
    latest.customer_key,
    {%- if by_location %}
    latest.home_location_id,
    {%- endif %}
    latest.method_id,
    latest.window_id,
    latest.cohort_id,
    latest.cohort_label,
    latest.confidence,
    latest.is_holdout,
    latest.op,
    latest.attestation_id,
    latest.changed_at,
    latest.emitted_at,
    latest.idempotency_key
from latest
cross join plan
where latest.recency = 1
  and (latest.op <> 'exit'
       or latest.emitted_at >= plan.as_of - interval '{{ var("marketing_signals__feed_tombstone_days") }} days')
{% endmacro %}
