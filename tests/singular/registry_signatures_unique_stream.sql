-- Guards: a stream appears at most once in a cause's signature (one direction, one lag
-- range per cause × stream). Returns the duplicated pairs.
select cause_id, stream_id, count(*) as rows_for_pair
from {{ ref('registry_root_cause_signatures') }}
group by cause_id, stream_id
having count(*) > 1
