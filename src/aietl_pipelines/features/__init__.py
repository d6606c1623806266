"""Per-pipeline features from ETL run telemetry, served through a Feast feature store."""
