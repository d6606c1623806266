"""aietl-pipelines: AI capabilities for an ETL platform, as Kedro pipelines."""

__version__ = "0.1.0"
