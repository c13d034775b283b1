{#- Fails on every row of compliance_violations (the model under test) that breaks rule `rule_id`. -#}
{% test compliance_rule_holds(model, rule_id) %}
select * from {{ model }}
where rule_id = '{{ rule_id }}'
{% endtest %}
