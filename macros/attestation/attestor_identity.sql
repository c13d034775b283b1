{#-
  The attestor identity stamped on every attestation and root-cause routing decision, as plain
  strings: service_identity (env MARKETING_SIGNALS_SERVICE_IDENTITY, default
  marketing_signals/dbt@<target>) and code_version (env MARKETING_SIGNALS_CODE_VERSION, default
  marketing_signals <marketing_signals__package_version>). model_version, policy_version and the
  dbt invocation id complete the set where the record is built.
-#}
{% macro attestor_identity() %}
  {{ return({
      'service_identity': env_var('MARKETING_SIGNALS_SERVICE_IDENTITY', 'marketing_signals/dbt@' ~ target.name),
      'code_version': env_var('MARKETING_SIGNALS_CODE_VERSION', 'marketing_signals ' ~ var('marketing_signals__package_version')),
  }) }}
{% endmacro %}
