"""Run by Airflow's own interpreter (.venv-airflow): load a DAG folder in Airflow's DagBag and print what it holds
as JSON (dag ids, schedules, tasks with their upstream tasks, import errors)."""

import json
import sys

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow < 3.1
    from airflow.models.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
report = {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    report["dags"][dag_id] = {
        "schedule": str(dag.schedule),
        "timetable": type(dag.timetable).__name__,
        "max_active_runs": dag.max_active_runs,
        "catchup": dag.catchup,
        "tasks": {t.task_id: {"upstream": sorted(t.upstream_task_ids), "bash_command": getattr(t, "bash_command", None)}
                  for t in dag.tasks},
        "topological": [t.task_id for t in dag.topological_sort()] if hasattr(dag, "topological_sort") else None,
    }
print("DAGBAG_REPORT " + json.dumps(report))
