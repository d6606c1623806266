"""Add new records to an earlier dedupe run: only they are embedded, compared and scored."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
