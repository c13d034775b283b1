{#- Fails on every row where the column is not exactly 0 (null counts as a failure). -#}
{% test all_zero(model, column_name) %}
select * from {{ model }}
where {{ column_name }} is null or {{ column_name }} <> 0
{% endtest %}
