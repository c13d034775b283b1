{#- The per-method cohort models, in registry order; the union models iterate over these. -#}
{% macro cohort_sql_methods() %}
  {{ return(['rfm', 'funnel', 'journey', 'persona']) }}
{% endmacro %}

{% macro cohort_python_methods() %}
  {{ return(['kmeans', 'hierarchical', 'dbscan', 'gaussian_mixture', 'lda_topics', 'word2vec',
             'graph_clustering', 'survival', 'intent']) }}
{% endmacro %}
