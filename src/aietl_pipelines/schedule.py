"""The schedule of the project's pipelines: `kedro airflow create` (kedro-airflow) with the pipeline names checked
first, and `kedro airflow crontab`, the same schedule (conf/base/airflow.yml) for cron where there is no Airflow.

Registered in cli.py as the project's `airflow` command group, which Kedro puts before the plugin's.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import click
from kedro_airflow.plugin import _get_pipeline_config, _load_config
from kedro_airflow.plugin import create as kedro_airflow_create

from aietl_pipelines.errors import AietlInputError

#: the pipelines the guide schedules; `make airflow-dag` generates one DAG for each
SCHEDULED_PIPELINES = ("dedupe", "drift_monitoring", "feature_engineering", "retraining")


def check_pipeline_names(names: Iterable[str], registered: Iterable[str]) -> None:
    """Raise one line listing the registered pipelines when a name is not one of them."""
    known = sorted(n for n in registered if n != "__default__")
    unknown = [n for n in names if n not in known and n != "__default__"]
    if unknown:
        raise AietlInputError(f"Unknown pipeline {', '.join(repr(n) for n in unknown)}: the registered pipelines are "
                              f"{', '.join(known)}.")


def _checked_create(callback: Any) -> Any:
    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from kedro.framework.project import pipelines

        if not kwargs.get("convert_all"):
            try:
                check_pipeline_names(kwargs["pipeline_names"], pipelines.keys())
            except AietlInputError as exc:
                raise click.ClickException(str(exc)) from None
        return callback(*args, **kwargs)

    return wrapper


create = click.Command(
    name="create",
    params=kedro_airflow_create.params,
    callback=_checked_create(kedro_airflow_create.callback),
    help=kedro_airflow_create.help,
    short_help=kedro_airflow_create.short_help,
)


def crontab_lines(config: Mapping[str, Any], pipelines: Iterable[str], project_path: Path, kedro: str,
                  env: str) -> list[str]:
    """One crontab line per pipeline, with the schedule of conf/*/airflow.yml (`@daily` etc. work in cron too)."""
    lines = []
    for name in pipelines:
        schedule = _get_pipeline_config(dict(config), {}, name).get("schedule", "@daily")
        log = project_path / "logs" / f"{name}.log"
        # flock: like Airflow's max_active_runs=1, a run never overlaps the previous one of the same pipeline
        lines.append(f"{schedule} cd {shlex.quote(str(project_path))} && mkdir -p logs && flock -n /tmp/aietl-{name}.lock "
                     f"{shlex.quote(kedro)} run --env {env} --pipeline {name} >> {shlex.quote(str(log))} 2>&1")
    return lines


@click.command(name="crontab")
@click.option("-p", "--pipelines", "pipeline_names", default=",".join(SCHEDULED_PIPELINES), show_default=True,
              help="Comma-separated pipeline names.")
@click.option("-e", "--env", default="local", show_default=True, help="Kedro environment of the scheduled runs.")
@click.option("--kedro", "kedro_bin", default=None, help="kedro executable (default: the one running this).")
@click.pass_obj
def crontab(metadata: Any, pipeline_names: str, env: str, kedro_bin: str | None) -> None:
    """Print crontab lines running the pipelines on the schedule of conf/*/airflow.yml (cron without Airflow)."""
    import sys

    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession

    names = [n for n in pipeline_names.split(",") if n]
    try:
        check_pipeline_names(names, pipelines.keys())
    except AietlInputError as exc:
        raise click.ClickException(str(exc)) from None
    with KedroSession.create(project_path=metadata.project_path, env=env) as session:
        config = _load_config(session.load_context())
    kedro = kedro_bin or str(Path(sys.executable).with_name("kedro"))
    click.echo(f"# aietl-pipelines schedule from conf/*/airflow.yml (env {env}); install with `crontab -e`")
    for line in crontab_lines(config, names, Path(metadata.project_path), kedro, env):
        click.echo(line)


@click.group(name="airflow")
def airflow() -> None:
    """Schedule the project's pipelines: Airflow DAGs (kedro-airflow) or crontab lines."""


airflow.add_command(create)
airflow.add_command(crontab)
