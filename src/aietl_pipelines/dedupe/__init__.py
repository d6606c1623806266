"""Duplicate detection: normalise, candidates (kNN + blocking), compare, score (Fellegi-Sunter EM), cluster, golden records."""
