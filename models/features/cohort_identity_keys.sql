{#-
  The identity map as the last completed refresh saw it: cohort_refresh_scope compares it with
  identity_customer_map to find keys that merged or split. Rebuilt at the end of each refresh.
-#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('cohort_refresh_log') }}

select customer_id, customer_key
from {{ ref('identity_customer_map') }}
