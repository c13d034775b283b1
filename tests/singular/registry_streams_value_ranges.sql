-- Guards: stream anomaly settings stay in range (sensitivity 0.5..2.0, noise_cv
-- 0.03..0.25, positive base level) and bounded ratios have a base level inside [0, 1].
select *
from {{ ref('registry_streams') }}
where sensitivity not between 0.5 and 2.0
    or noise_cv not between 0.03 and 0.25
    or base_level <= 0
    or (is_bounded_ratio and base_level > 1)
