{#- Fails on every non-null value that does not wholly match the regular expression `pattern`. -#}
{% test matches_regex(model, column_name, pattern) %}
select * from {{ model }}
where {{ column_name }} is not null
  and not {{ marketing_signals.matches_pattern(column_name, pattern) }}
{% endtest %}
