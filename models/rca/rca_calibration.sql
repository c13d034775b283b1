{#-
  The closed loop's scorecard: every realised outcome linked to a component, against the
  component's ranking. One row for all outcomes (slice 'all') and one per confidence tier of
  the component's top hypothesis.
-#}
{{ config(materialized='table') }}

with realised as (
    select
        linked.outcome_id,
        linked.component_id,
        linked.cause_id,
        hyp.rank,
        hyp.posterior
    from {{ ref('rca_outcomes_linked') }} as linked
    left join {{ ref('rca_hypotheses') }} as hyp
        on hyp.component_id = linked.component_id
       and hyp.cause_id = linked.cause_id
),

top_ranked as (
    select component_id, cause_id as top_cause_id, posterior as top_posterior, confidence_tier
    from {{ ref('rca_hypotheses') }}
    where rank = 1
),

scored as (
    select
        top_ranked.confidence_tier,
        top_ranked.top_posterior,
        case when top_ranked.top_cause_id = realised.cause_id then 1.0 else 0.0 end as top_correct,
        case when realised.rank <= 3 then 1.0 else 0.0 end as in_top_3,
        coalesce(realised.posterior, 0.0) as realised_posterior
    from realised
    inner join top_ranked on top_ranked.component_id = realised.component_id
)

select
    coalesce(confidence_tier, 'all') as slice,
    count(*) as n_outcomes,
    avg(top_correct) as ac_at_1,
    avg(in_top_3) as ac_at_3,
    avg(top_posterior) as mean_top_posterior,
    avg((top_posterior - top_correct) * (top_posterior - top_correct)) as brier_top1,
    avg(realised_posterior) as mean_posterior_of_realised_cause
from scored
group by grouping sets ((confidence_tier), ())
