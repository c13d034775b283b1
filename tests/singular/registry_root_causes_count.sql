-- Guards: the 25 candidate root causes the ranker scores.
-- Fails (returns the actual row count) unless registry_root_causes holds exactly 25 rows, so a deleted
-- or an extra row is caught. Update the number here together with
-- the downstream code when the registry is deliberately extended.
select count(*) as root_cause_count
from {{ ref('registry_root_causes') }}
having count(*) <> 25
