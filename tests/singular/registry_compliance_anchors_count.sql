-- Guards: the 5 compliance anchors of the release gate.
-- Fails (returns the actual row count) unless registry_compliance_anchors holds exactly 5 rows, so a deleted
-- or an extra row is caught. Update the number here together with
-- the downstream code when the registry is deliberately extended.
select count(*) as compliance_anchor_count
from {{ ref('registry_compliance_anchors') }}
having count(*) <> 5
