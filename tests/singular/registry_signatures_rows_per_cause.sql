-- Guards: every root cause has a symptom signature of 2 to 5 streams (a cause with none
-- could never be ranked). Returns the offending causes with their row counts.
select
    c.cause_id,
    count(s.stream_id) as signature_rows
from {{ ref('registry_root_causes') }} as c
left join {{ ref('registry_root_cause_signatures') }} as s
    on s.cause_id = c.cause_id
group by c.cause_id
having count(s.stream_id) not between 2 and 5
