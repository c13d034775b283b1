{#-
  The locations a root-cause hypothesis affects, one row per hypothesis_id × location_id, from a
  relation (or CTE name) `hypotheses` with hypothesis_id, incident_id and location_id:
    * a location hypothesis (location_id <> 'ALL'): its root location;
    * a portfolio hypothesis (location_id 'ALL'): the incident's member locations
      (stream_anomalies of the incident, the portfolio roll-up not counted);
    * a portfolio hypothesis whose incident has members on the roll-up only: every location
      with stream data.
  The spend estimate (rca_routing_decisions), the opt-out count and the control evidence
  (int_rca_gate__checks) all read the same set.
-#}
{% macro rca_affected_locations(hypotheses) -%}
    select hypotheses.hypothesis_id, hypotheses.location_id
    from {{ hypotheses }} as hypotheses
    where coalesce(hypotheses.location_id, 'ALL') <> 'ALL'

    union

    select hypotheses.hypothesis_id, anomalies.location_id
    from {{ hypotheses }} as hypotheses
    inner join {{ ref('stream_anomalies') }} as anomalies
        on anomalies.incident_id = hypotheses.incident_id
       and anomalies.location_id <> 'ALL'
    where coalesce(hypotheses.location_id, 'ALL') = 'ALL'

    union

    select hypotheses.hypothesis_id, locations.location_id
    from {{ hypotheses }} as hypotheses
    cross join (
        select distinct location_id from {{ ref('stream_metrics_staged') }} where location_id <> 'ALL'
    ) as locations
    where coalesce(hypotheses.location_id, 'ALL') = 'ALL'
      and not exists (
          select 1
          from {{ ref('stream_anomalies') }} as anomalies
          where anomalies.incident_id = hypotheses.incident_id
            and anomalies.location_id <> 'ALL'
      )
{%- endmacro %}
