-- Guards: the 13 cohort methods every customer × window is scored by.
-- Fails (returns the actual row count) unless registry_cohort_methods holds exactly 13 rows, so a deleted
-- or an extra row is caught. Update the number here together with
-- the downstream code when the registry is deliberately extended.
select count(*) as cohort_method_count
from {{ ref('registry_cohort_methods') }}
having count(*) <> 13
