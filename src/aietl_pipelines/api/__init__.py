"""FastAPI service exposing the vector search, drift and feature endpoints."""
