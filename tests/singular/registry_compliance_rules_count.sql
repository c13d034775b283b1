-- Guards: the compliance rule set keeps its expected size (15 to 25 rules), so a bulk
-- deletion or an accidental duplication of the rule file is caught in review.
select count(*) as compliance_rule_count
from {{ ref('registry_compliance_rules') }}
having count(*) not between 15 and 25
