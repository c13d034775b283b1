{#- Customers a Python method scored but could not place in a cohort, with the method's reason. -#}
{{ config(materialized='table') }}

{% for method in marketing_signals.cohort_python_methods() -%}
select customer_key, method_id, window_id, model_version, as_of, unassigned_reason
from {{ ref('cohort_' ~ method) }}
where cohort_id is null
{% if not loop.last %}union all{% endif %}
{% endfor %}
