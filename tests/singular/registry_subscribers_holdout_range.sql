-- Guards: subscriber holdout shares stay within 0..0.2 and SLAs are positive.
select subscriber_id, holdout_share, sla_minutes
from {{ ref('registry_subscribers') }}
where holdout_share < 0
    or holdout_share > 0.2
    or sla_minutes <= 0
