"""dedupe: duplicate customers → clusters and golden records."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
