-- Guards: every counsel exception carries a written justification (>= 40 characters), an
-- approver and an approval date, and excepts a rule that may be excepted (flag_for_counsel or
-- emit_with_fields; suppress and exclude_before_cohorts rules protect people's choices and
-- cannot be waived). Returns each offending exception with the reason.
select
    exceptions.exception_id,
    exceptions.rule_id,
    case
        when rules.rule_id is null then 'unknown rule'
        when rules.outcome not in ('flag_for_counsel', 'emit_with_fields') then 'rule outcome ' || rules.outcome || ' cannot be excepted'
        when exceptions.justification is null or length(trim(exceptions.justification)) < 40 then 'justification missing or shorter than 40 characters'
        when exceptions.approved_by is null then 'no approver'
        when exceptions.approved_at is null then 'no approval date'
    end as problem
from {{ ref('compliance_exceptions') }} as exceptions
left join {{ ref('registry_compliance_rules') }} as rules
    on rules.rule_id = exceptions.rule_id
where rules.rule_id is null
   or rules.outcome not in ('flag_for_counsel', 'emit_with_fields')
   or exceptions.justification is null or length(trim(exceptions.justification)) < 40
   or exceptions.approved_by is null
   or exceptions.approved_at is null
