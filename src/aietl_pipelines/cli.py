"""Project CLI: Kedro's own `kedro run`, with bad input reported as one clear line instead of a traceback.

Kedro loads `<package>.cli.cli` and lets its commands override the built-in ones.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError

from aietl_pipelines.dedupe.label_cli import dedupe_label
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.hooks import LOADING
from aietl_pipelines.schedule import airflow


def find_input_error(exc: BaseException | None) -> AietlInputError | None:
    """The AietlInputError behind an exception (Kedro may wrap it), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, AietlInputError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


_LOAD_FAILURE = "Failed while loading data from dataset"


def _first_line(text: str, limit: int = 200) -> str:
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_load_error(exc: BaseException | None, dataset_name: str | None = None) -> str | None:
    """One line for a dataset that Kedro could not read (empty, truncated or foreign bytes), else None.

    Names the dataset (when known) and the file, says what is wrong and how to fix it."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DatasetError) and str(exc).startswith(_LOAD_FAILURE):
            break
        exc = exc.__cause__ or exc.__context__
    else:
        return None
    if exc is None:
        return None
    match = re.search(r"(?:filepath|path)=(?:PurePosixPath\(')?([^,)']+)", str(exc))
    path = match.group(1) if match else None
    cause = exc.__cause__ or exc.__context__
    if path and Path(path).is_file() and Path(path).stat().st_size == 0:
        problem = "the file is empty (0 bytes)"
    elif cause is not None:
        problem = f"{type(cause).__name__}: {_first_line(str(cause))}"
    else:
        problem = _first_line(str(exc).split("\n", 1)[-1])
    kind = Path(path).suffix.lstrip(".") if path else ""
    what = f"'{dataset_name}'" if dataset_name else "an input dataset"
    where = f" ({path})" if path else ""
    return (f"cannot read {what}{where}: {problem}. Replace it with a valid {kind or 'data'} file (the sample "
            "data: `kedro run --pipeline data_generation`) or point the catalog entry at another file.")


def _friendly(callback: Any) -> Any:
    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except Exception as exc:
            input_error = find_input_error(exc)
            if input_error is not None:
                raise click.ClickException(f"bad input: {input_error}") from None
            unreadable = describe_load_error(exc, LOADING.get("name"))
            if unreadable is not None:
                raise click.ClickException(f"bad input: {unreadable}") from None
            raise

    return wrapper


run = click.Command(
    name="run",
    params=kedro_run.params,
    callback=_friendly(kedro_run.callback),
    help=kedro_run.help,
    short_help=kedro_run.short_help,
    context_settings=kedro_run.context_settings,
)


@click.group(name="aietl_pipelines")
def cli() -> None:
    """Project commands (override Kedro's built-ins)."""


cli.add_command(run)
cli.add_command(dedupe_label)  # labelled dedupe: y/n/u in the terminal (issue 13)
cli.add_command(airflow)  # kedro-airflow's `create` with the pipeline names checked, + `crontab`
