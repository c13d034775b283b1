-- Guards: every method a subscriber takes (pipe list in cohort_methods_taken) is a
-- registered cohort method. Returns each unknown subscriber × method.
-- DuckDB syntax (string_split + unnest).
with taken as (
    select
        subscriber_id,
        trim(unnest(string_split(cohort_methods_taken, '|'))) as method_id
    from {{ ref('registry_subscribers') }}
)

select taken.subscriber_id, taken.method_id
from taken
left join {{ ref('registry_cohort_methods') }} as m
    on m.method_id = taken.method_id
where m.method_id is null
