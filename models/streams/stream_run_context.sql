{#-
  The day Observe and Forecast run up to (one row): the date of marketing_signals__as_of when
  set, else the newest period_start with a usable value.
-#}
{{ config(materialized='table') }}

select
    {% if var('marketing_signals__as_of', none) -%}
    cast(cast('{{ var("marketing_signals__as_of") }}' as timestamp) as date) as as_of_date,
    cast('var marketing_signals__as_of' as varchar) as as_of_source
    {%- else -%}
    (select max(period_start) from {{ ref('stream_metrics_checked') }} where quarantine_reason is null) as as_of_date,
    cast('latest stream value' as varchar) as as_of_source
    {%- endif %}
