{{ config(enabled=var("marketing_signals__streams_enabled", true)) }}
{#- Every stream_metrics row is staged, quarantined with a reason, or after the run's as_of date. -#}
with counts as (
    select
        (select count(*) from {{ source('marketing_signals', 'stream_metrics') }}) as source_rows,
        (select count(*) from {{ ref('stream_metrics_staged') }}) as staged_rows,
        (select count(*) from {{ ref('stream_metrics_quarantine') }}) as quarantined_rows,
        (select count(*) from {{ ref('stream_metrics_checked') }} as c cross join {{ ref('stream_run_context') }} as x
          where c.quarantine_reason is null and c.period_start > x.as_of_date) as after_as_of_rows
)
select * from counts where source_rows <> staged_rows + quarantined_rows + after_as_of_rows
