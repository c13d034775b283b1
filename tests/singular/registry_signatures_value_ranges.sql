-- Guards: signature lags and strengths stay in the ranges the demo generator and ranker
-- support (0 <= lag_min <= lag_max <= 7 days; strength 0.15..0.8). Returns bad rows.
select *
from {{ ref('registry_root_cause_signatures') }}
where lag_min_days < 0
    or lag_max_days < lag_min_days
    or lag_max_days > 7
    or strength < 0.15
    or strength > 0.8
