"""The Snowflake path (issue 8, in progress): local stand-ins for Snowflake used by tests."""
