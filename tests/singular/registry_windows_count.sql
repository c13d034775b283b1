-- Guards: the 6 look-back windows every cohort method is computed over.
-- Fails (returns the actual row count) unless registry_windows holds exactly 6 rows, so a deleted
-- or an extra row is caught. Update the number here together with
-- the downstream code when the registry is deliberately extended.
select count(*) as window_count
from {{ ref('registry_windows') }}
having count(*) <> 6
