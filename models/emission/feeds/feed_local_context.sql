{#- Feed for the local_context subscriber (registry_subscribers): see macros/emission/emission_feed.sql. -#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('attestation_checkpoints') }}
{{ marketing_signals.emission_feed('local_context') }}
