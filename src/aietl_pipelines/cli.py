"""Project CLI: Kedro's own `kedro run`, with bad input reported as one clear line instead of a traceback.

Kedro loads `<package>.cli.cli` and lets its commands override the built-in ones.
"""

from __future__ import annotations

import functools
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from aietl_pipelines.errors import AietlInputError


def find_input_error(exc: BaseException | None) -> AietlInputError | None:
    """The AietlInputError behind an exception (Kedro may wrap it), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, AietlInputError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _friendly(callback: Any) -> Any:
    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except Exception as exc:
            input_error = find_input_error(exc)
            if input_error is None:
                raise
            raise click.ClickException(f"bad input: {input_error}") from None

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
