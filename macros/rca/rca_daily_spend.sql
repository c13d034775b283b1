{#-
  Estimated paid spend per channel × location × day (USD), from stream_metrics_staged: the
  estimator behind the auto-disable spend cap. Only days on which every input stream has a
  value get a row; a channel without an estimator here has no spend, so its auto-disable rules
  fail closed (affected spend unknown).
    paid_search  paid_search_clicks × paid_search_cpc (exact: CPC is spend per click).
    paid_social  paid_social_clicks / marketing_signals__rca_paid_social_ctr × paid_social_cpm / 1000.
                 The streams carry clicks and CPM but no impressions; impressions are estimated
                 from clicks with an assumed link click-through rate. A real CTR lower than the
                 assumption means more impressions and more spend than estimated, so keep the
                 assumed CTR at or below the account's observed CTR.
-#}
{% macro rca_daily_spend() -%}
    {%- set social_ctr = var('marketing_signals__rca_paid_social_ctr', 0.009) | float -%}
    {%- if social_ctr <= 0 or social_ctr > 1 -%}
      {{ exceptions.raise_compiler_error("marketing_signals__rca_paid_social_ctr must be in (0, 1], got " ~ social_ctr) }}
    {%- endif -%}
    select
        cast('paid_search' as varchar) as channel,
        location_id,
        period_start,
        max(case when stream_id = 'paid_search_clicks' then value end)
            * max(case when stream_id = 'paid_search_cpc' then value end) as spend_usd
    from {{ ref('stream_metrics_staged') }}
    where stream_id in ('paid_search_clicks', 'paid_search_cpc')
    group by location_id, period_start
    having count(distinct stream_id) = 2

    union all

    select
        cast('paid_social' as varchar) as channel,
        location_id,
        period_start,
        max(case when stream_id = 'paid_social_clicks' then value end) / {{ social_ctr }}
            * max(case when stream_id = 'paid_social_cpm' then value end) / 1000.0 as spend_usd
    from {{ ref('stream_metrics_staged') }}
    where stream_id in ('paid_social_clicks', 'paid_social_cpm')
    group by location_id, period_start
    having count(distinct stream_id) = 2
{%- endmacro %}
