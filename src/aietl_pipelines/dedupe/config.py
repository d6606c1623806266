"""The dedupe configuration: one dataclass, parsed once per run, with ONE source of defaults.

Every tunable default (k of the kNN, thresholds, EM iterations, survivorship rules, the engine, ...) is read
from `conf/base/parameters_dedupe.yml`, whoever builds the configuration: the Kedro pipeline (Kedro loads that
file, plus the environment's overrides), `deduplicate_customers` and direct `DedupeConfig(...)` calls (which read
the same file here). Only what describes a data set has a neutral default in code: `id_column`, `fields`,
`text_column`, `blocking`, `truth_column` (the YAML's values describe the sample customers).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from aietl_pipelines.errors import AietlInputError

#: Keys that describe the data set rather than the model: not taken from the YAML by direct callers.
DATA_KEYS = ("id_column", "fields", "text_column", "blocking", "truth_column", "labels")


def project_root() -> Path:
    """The project checkout ($AIETL_PROJECT_ROOT, else the checkout this package is installed from)."""
    return Path(os.environ.get("AIETL_PROJECT_ROOT") or Path(__file__).resolve().parents[3])


@lru_cache(maxsize=1)
def _base_params(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.exists():
        raise AietlInputError(f"The dedupe defaults {file} are missing: set AIETL_PROJECT_ROOT to the project "
                              "checkout (the folder holding conf/base/parameters_dedupe.yml).")
    return dict(yaml.safe_load(file.read_text())["dedupe"])


def default_params() -> dict[str, Any]:
    """A copy of the `dedupe:` block of conf/base/parameters_dedupe.yml (the defaults of every entry point)."""
    return copy.deepcopy(_base_params(str(project_root() / "conf" / "base" / "parameters_dedupe.yml")))


def _default(key: str) -> Any:
    params = default_params()
    if key not in params:
        raise AietlInputError(f"conf/base/parameters_dedupe.yml has no `dedupe.{key}`: add it (the defaults of "
                              "every dedupe entry point live there).")
    return params[key]


def _yaml(key: str) -> Any:
    return field(default_factory=lambda: _default(key))


@dataclass
class DedupeConfig:
    """Everything tunable (`parameters_dedupe.yml`); see the YAML for what each key does."""

    # the data set (neutral defaults; the pipeline takes them from its parameters)
    id_column: str = "record_id"
    fields: dict[str, str] = field(default_factory=dict)   # structured mode: column -> kind
    text_column: str | None = None                          # free-text mode when set
    blocking: list[list[str]] = field(default_factory=list)
    truth_column: str | None = None
    labels: list[dict[str, Any]] = field(default_factory=list)  # labelled pairs (dedupe/labels.py)
    # the model: defaults from conf/base/parameters_dedupe.yml only
    engine: str = _yaml("engine")
    knn_k: int = _yaml("knn_k")
    knn_max_k: int = _yaml("knn_max_k")
    embed_kinds: list[str] = _yaml("embed_kinds")
    text_embedding: str = _yaml("text_embedding")
    knn_precision: str = _yaml("knn_precision")
    knn_min_cosine: float = _yaml("knn_min_cosine")
    knn_method: str = _yaml("knn_method")
    knn_exact_max: int = _yaml("knn_exact_max")
    knn_list_size: int = _yaml("knn_list_size")
    knn_probes: int = _yaml("knn_probes")
    device: str = _yaml("device")
    embed_precision: str = _yaml("embed_precision")
    use_embeddings: bool = _yaml("use_embeddings")
    cosine_in_score: bool = _yaml("cosine_in_score")
    match_threshold: float = _yaml("match_threshold")
    max_cluster_size: int | None = _yaml("max_cluster_size")
    max_block_size: int = _yaml("max_block_size")
    block_window: int = _yaml("block_window")
    em_iterations: int = _yaml("em_iterations")
    u_sample_pairs: int = _yaml("u_sample_pairs")
    seed: int = _yaml("seed")
    cache_dir: str | None = _yaml("cache_dir")
    survivorship: dict[str, Any] = _yaml("survivorship")
    labels_path: str | None = _yaml("labels_path")

    def __post_init__(self) -> None:
        # paths in the parameters are relative to the project, as for Kedro's catalog (cwd may be elsewhere)
        if self.cache_dir and not Path(self.cache_dir).is_absolute() and "://" not in str(self.cache_dir):
            self.cache_dir = str(project_root() / self.cache_dir)
        if self.text_embedding not in ("pieces", "text"):
            raise AietlInputError(f"dedupe.text_embedding must be pieces or text, not {self.text_embedding!r}: "
                                  "fix it in the dedupe parameters.")
        if self.labels_path and not Path(self.labels_path).is_absolute():
            self.labels_path = str(project_root() / self.labels_path)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DedupeConfig:
        """The configuration of one run from the `dedupe` parameters (unknown keys such as input paths ignored)."""
        names = {f.name for f in dataclass_fields(cls)}
        config = cls(**{k: v for k, v in params.items() if k in names})
        if not config.fields and not config.text_column:
            raise AietlInputError("Declare `dedupe.fields` (column: kind) for structured records or "
                                  "`dedupe.text_column` for free text.")
        if config.labels_path and not config.labels:  # the labelled pairs are part of the run's configuration
            from aietl_pipelines.dedupe.labels import load_labels

            config.labels = load_labels(config.labels_path)
        return config

    @property
    def mode(self) -> str:
        return "text" if self.text_column else "structured"

    def structured_fields(self) -> list[str]:
        """Fields compared in structured mode (none in free-text mode)."""
        return list(self.fields) if self.mode == "structured" else []
