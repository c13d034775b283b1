{#-
  One row per incident: anomaly windows grouped across streams and locations (see
  stream_anomalies.incident_id and docs/streams.md). The unit Correlate and the root-cause
  ranker work on.
-#}
{{ config(materialized='table') }}

with members as (
    select * from {{ ref('stream_anomalies') }}
),

lead as (
    select incident_id, stream_id as lead_stream_id, location_id as lead_location_id,
           row_number() over (partition by incident_id order by anomaly_score desc, onset_date, stream_id, location_id) as rn
    from members
)

select
    m.incident_id,
    min(m.incident_onset_date) as onset_date,
    min(m.detected_date) as first_detected_date,
    max(m.end_date) as end_date,
    count(*) as n_anomalies,
    count(distinct m.stream_id) as n_streams,
    count(distinct case when m.location_id <> 'ALL' then m.location_id end) as n_locations,
    case when count(distinct case when m.location_id <> 'ALL' then m.location_id end) > 1 then 'portfolio'
         else 'location' end as scope,
    max(m.anomaly_score) as peak_score,
    sum(case when m.is_direction_of_concern then 1 else 0 end) as n_direction_of_concern,
    bool_or(m.is_open) as is_open,
    min(l.lead_stream_id) as lead_stream_id,
    min(l.lead_location_id) as lead_location_id,
    string_agg(distinct m.stream_id, ',' order by m.stream_id) as streams,
    min(m.as_of_date) as as_of_date
from members as m
left join lead as l on l.incident_id = m.incident_id and l.rn = 1
group by m.incident_id
