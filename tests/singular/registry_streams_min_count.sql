-- Guards: at least 30 metric streams are registered for Observe / Forecast / Correlate.
-- Fails (returns the actual row count) when fewer than 30 streams remain.
select count(*) as stream_count
from {{ ref('registry_streams') }}
having count(*) < 30
