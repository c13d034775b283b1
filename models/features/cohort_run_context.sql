{#- The as_of every cohort output of this run refers to (one row), and how it was chosen. -#}
{{ config(materialized='table') }}

select
    {{ marketing_signals.cohort_as_of() }} as as_of,
    cast({{ "'var marketing_signals__as_of'" if var('marketing_signals__as_of', none) else "'latest captured event time'" }} as varchar) as as_of_source,
    {{ dbt.current_timestamp() }} as computed_at,
    cast('{{ invocation_id }}' as varchar) as invocation_id
