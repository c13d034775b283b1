{#- Fails on every group (`group_by` columns) in which the column takes more than one value. -#}
{% test constant_within_group(model, column_name, group_by) %}
select {{ group_by | join(', ') }}, count(distinct {{ column_name }}) as distinct_values
from {{ model }}
group by {{ group_by | join(', ') }}
having count(distinct {{ column_name }}) > 1
{% endtest %}
