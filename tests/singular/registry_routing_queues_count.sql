-- Guards: the 9 routing queues (7 human, 2 automatic).
-- Fails (returns the actual row count) unless registry_routing_queues holds exactly 9 rows, so a deleted
-- or an extra row is caught. Update the number here together with
-- the downstream code when the registry is deliberately extended.
select count(*) as routing_queue_count
from {{ ref('registry_routing_queues') }}
having count(*) <> 9
