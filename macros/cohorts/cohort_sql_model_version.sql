{#-
  model_version of a SQL cohort method. SQL methods have no fitted state: their rules live in
  the model code and the registries (reviewed in git), so the version names the rule revision
  (bump `revision` in the model when its logic changes) and the registry rows it read.
-#}
{% macro cohort_sql_model_version(method_id, revision=1) -%}
  '{{ method_id }}/sql/r{{ revision }}'
{%- endmacro %}
