-- Guards: the 5 jurisdictions compliance rules and default consent are resolved for.
-- Fails (returns the actual row count) unless registry_jurisdictions holds exactly 5 rows, so a deleted
-- or an extra row is caught. Update the number here together with
-- the downstream code when the registry is deliberately extended.
select count(*) as jurisdiction_count
from {{ ref('registry_jurisdictions') }}
having count(*) <> 5
