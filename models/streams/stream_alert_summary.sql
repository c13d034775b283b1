{#-
  One row per run: anomaly windows, incidents and the alert-reduction ratio (anomalies per
  incident), next to the rolling z-score baseline's window count on the same data.
-#}
{{ config(materialized='table') }}

select
    (select min(as_of_date) from {{ ref('stream_anomalies') }}) as as_of_date,
    (select count(*) from {{ ref('stream_anomalies') }}) as anomalies,
    (select count(*) from {{ ref('stream_anomalies') }} where is_direction_of_concern) as anomalies_direction_of_concern,
    (select count(*) from {{ ref('incidents') }}) as incidents,
    (select count(*) from {{ ref('stream_anomalies') }}) * 1.0
        / nullif((select count(*) from {{ ref('incidents') }}), 0) as alert_reduction_ratio,
    (select count(*) from {{ ref('stream_anomalies_zscore') }}) as zscore_baseline_anomalies,
    (select count(distinct stream_id || '|' || location_id) from {{ ref('stream_metrics_staged') }}) as series_observed,
    (select count(*) from {{ ref('stream_metrics_quarantine') }}) as quarantined_rows
