{#-
  Calendar days whose effect Observe and Forecast learn separately from the weekly season:
  holidays (registry_holidays, for the countries in marketing_signals__holiday_countries) and
  promo periods (context_events whose type is in marketing_signals__promo_context_types; a
  null location means every location). One row per day and location_id ('ALL' = every location).
-#}
{{ config(materialized='table') }}

{%- set countries = var('marketing_signals__holiday_countries') -%}
{%- set promo_types = var('marketing_signals__promo_context_types') %}

select
    holiday_date as calendar_date,
    cast('ALL' as varchar) as location_id,
    cast('holiday' as varchar) as calendar_kind,
    holiday_name as calendar_key
from {{ ref('registry_holidays') }}
where country in ({% for c in countries %}'{{ c }}'{{ ", " if not loop.last }}{% endfor %})

union all

select distinct
    cast(d.day as date) as calendar_date,
    coalesce(cast(e.location_id as varchar), 'ALL') as location_id,
    cast('promo' as varchar) as calendar_kind,
    cast('promo' as varchar) as calendar_key
from {{ source('marketing_signals', 'context_events') }} as e
cross join lateral (
    select unnest(generate_series(cast(e.starts_at as date), cast(coalesce(e.ends_at, e.starts_at) as date), interval 1 day)) as day
) as d
where e.context_type in ({% for t in promo_types %}'{{ t }}'{{ ", " if not loop.last }}{% endfor %}{% if not promo_types %}null{% endif %})
