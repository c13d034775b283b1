-- Guards: the 8 downstream subscribers, one feed table each.
-- Fails (returns the actual row count) unless registry_subscribers holds exactly 8 rows, so a deleted
-- or an extra row is caught. Update the number here together with
-- the downstream code when the registry is deliberately extended.
select count(*) as subscriber_count
from {{ ref('registry_subscribers') }}
having count(*) <> 8
