{#- The method × window pairs each subscriber takes (registry_subscribers pipe lists, matched to the method and window registries, so a typo finds nothing and the registry test names it). -#}
{{ config(materialized='view') }}

select
    subscribers.subscriber_id,
    methods.method_id,
    windows.window_id
from {{ ref('registry_subscribers') }} as subscribers
inner join {{ ref('registry_cohort_methods') }} as methods
    on '|' || subscribers.cohort_methods_taken || '|' like '%|' || methods.method_id || '|%'
inner join {{ ref('registry_windows') }} as windows
    on '|' || subscribers.windows_taken || '|' like '%|' || windows.window_id || '|%'
