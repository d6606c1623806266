"""Kedro datasets at the MLflow registry boundary, so that the retraining nodes stay pure."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset

from aietl_pipelines.retraining.registry import load_champion, register_model


class ChampionModelDataset(AbstractDataset[None, Any]):
    """Loads `models:/<name>@champion` (None when no champion exists yet)."""

    def __init__(self, model_name: str, metadata: dict[str, Any] | None = None) -> None:
        self._model_name = model_name
        self.metadata = metadata

    def _load(self) -> Any:
        return load_champion(self._model_name)

    def _save(self, data: None) -> None:
        raise NotImplementedError("The champion is set by promotion (RegisteredModelDataset), not saved.")

    def _exists(self) -> bool:
        return True  # "no champion" is a valid state, loaded as None

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": "champion"}


class RegisteredModelDataset(AbstractDataset[dict[str, Any], None]):
    """`save({"model", "input_example", "promote", "tags"})` registers the model version and moves the
    `champion` alias when `promote` is true (else aliases/tags it `challenger`). `model=None` saves nothing
    (training was skipped)."""

    def __init__(self, model_name: str, metadata: dict[str, Any] | None = None) -> None:
        self._model_name = model_name
        self.metadata = metadata

    def _save(self, data: dict[str, Any]) -> None:
        if not data or data.get("model") is None:
            return
        register_model(data["model"], self._model_name, data["input_example"], bool(data["promote"]),
                       data.get("tags"))

    def _load(self) -> None:
        raise NotImplementedError("Load the champion with ChampionModelDataset.")

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name}
