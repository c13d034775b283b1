{#-
  Fails on every customer × window that is eligible for `method_id` (cohort_eligible_customers, in
  a window cohort_sufficiency marks sufficient) but has no row in the model, and on every model
  row that is not such an eligible customer: the method assigns exactly its eligible customers.
-#}
{% test covers_eligible_customers(model, method_id) %}
with eligible as (
    select eligible.customer_key, eligible.window_id
    from {{ ref('cohort_eligible_customers') }} as eligible
    inner join {{ ref('cohort_sufficiency') }} as sufficiency
        on sufficiency.method_id = eligible.method_id
       and sufficiency.window_id = eligible.window_id
       and sufficiency.status = 'sufficient'
    where eligible.method_id = '{{ method_id }}'
),

assigned as (
    select customer_key, window_id from {{ model }}
)

select 'eligible_without_row' as problem, * from (select * from eligible except select * from assigned) as missing
union all
select 'row_not_eligible' as problem, * from (select * from assigned except select * from eligible) as extra
{% endtest %}
