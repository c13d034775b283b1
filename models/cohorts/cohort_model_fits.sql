{#- Every fitted Python model (all refits, all methods): version, status, reason, quality, parameters. -#}
{{ config(materialized='view') }}

{% for method in marketing_signals.cohort_python_methods() -%}
select method_id, window_id, model_version, status, reason, as_of, fitted_at, n_fit, fit_seconds,
       quality_json, model_json
from {{ ref('cohort_fit_' ~ method) }}
{% if not loop.last %}union all{% endif %}
{% endfor %}
