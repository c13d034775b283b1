-- Guards: root symptoms vary across causes - at most 3 causes start their cascade on the
-- same stream and direction, so the root symptom stays informative for the ranker.
select stream_id, direction, count(*) as causes_sharing_root
from {{ ref('registry_root_cause_signatures') }}
where is_root_symptom
group by stream_id, direction
having count(*) > 3
