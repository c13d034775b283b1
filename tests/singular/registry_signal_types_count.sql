-- Guards: the 25 signal types that capture, features and the demo generator expect.
-- Fails (returns the actual row count) unless registry_signal_types holds exactly 25 rows, so a deleted
-- or an extra row is caught. Update the number here together with
-- the downstream code when the registry is deliberately extended.
select count(*) as signal_type_count
from {{ ref('registry_signal_types') }}
having count(*) <> 25
