{#-
  Mutually exclusive cohorts for subscribers that need one cohort per customer. For each
  exclusive set of registry_exclusive_cohorts (rows: method × window × cohort_id or '*' for any
  cohort of that method × window, with a priority), every current membership that the set lists
  is a candidate; the lowest priority number wins (ties: method, window, cohort_id). Losing
  memberships stay visible (is_winner false, with the winner), so nothing is silently dropped.
-#}
{{ config(materialized='view') }}

with rules as (
    select exclusive_set_id, method_id, window_id, cohort_id as cohort_match, cast(priority as integer) as priority
    from {{ ref('registry_exclusive_cohorts') }}
),

candidates as (
    -- the most specific rule decides a membership's priority (an exact cohort_id beats '*')
    select
        rules.exclusive_set_id,
        membership.customer_key,
        membership.method_id,
        membership.window_id,
        membership.cohort_id,
        membership.cohort_label,
        membership.calibrated_confidence,
        membership.valid_from,
        rules.priority,
        row_number() over (
            partition by rules.exclusive_set_id, membership.customer_key, membership.method_id,
                         membership.window_id
            order by case when rules.cohort_match = '*' then 1 else 0 end, rules.priority
        ) as rule_rank
    from {{ ref('cohort_membership') }} as membership
    inner join rules
        on rules.method_id = membership.method_id
       and rules.window_id = membership.window_id
       and (rules.cohort_match = membership.cohort_id or rules.cohort_match = '*')
),

ranked as (
    select
        *,
        row_number() over (
            partition by exclusive_set_id, customer_key
            order by priority, method_id, window_id, cohort_id
        ) as rank_in_set
    from candidates
    where rule_rank = 1
)

select
    ranked.exclusive_set_id,
    ranked.customer_key,
    ranked.method_id,
    ranked.window_id,
    ranked.cohort_id,
    ranked.cohort_label,
    ranked.priority,
    cast(ranked.rank_in_set as integer) as rank_in_set,
    ranked.rank_in_set = 1 as is_winner,
    first_value(ranked.cohort_id) over (
        partition by ranked.exclusive_set_id, ranked.customer_key order by ranked.rank_in_set
    ) as winning_cohort_id,
    ranked.calibrated_confidence,
    ranked.valid_from
from ranked
