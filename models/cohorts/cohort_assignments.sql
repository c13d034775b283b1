{#-
  The uniform cohort contract: one row per customer × method × window that has an assignment,
  across the 4 SQL and 9 Python methods. Customers a method could not assign (DBSCAN noise, no
  graph edges, ...) are in cohort_unassigned with the reason; whole method × window gaps are in
  cohort_coverage. A view: membership reads only the rows it compares, and nothing is copied.
-#}
{{ config(materialized='view') }}

{%- set columns = 'customer_key, method_id, window_id, cohort_id, cohort_label, confidence, source_attribution, model_version, as_of' %}

{% for method in marketing_signals.cohort_sql_methods() -%}
select {{ columns }}, cast(null as double) as score
from {{ ref('cohort_' ~ method) }}
union all
{% endfor -%}
{% for method in marketing_signals.cohort_python_methods() -%}
select {{ columns }}, score
from {{ ref('cohort_' ~ method) }}
where cohort_id is not null
{% if not loop.last %}union all{% endif %}
{% endfor %}
