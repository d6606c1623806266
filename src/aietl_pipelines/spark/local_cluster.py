"""A real Spark cluster on this machine, and the pipelines run on it: `python -m aietl_pipelines.spark.local_cluster`.

`local[*]` runs the executors inside the driver's JVM, which can hide what breaks on a cluster (closures that do
not pickle, files only the driver sees, state kept in the driver process). This starts Spark's own standalone
master and a worker (separate JVMs; each executor its own JVM with its own Python workers), runs
`kedro run --env spark --pipeline P` for each pipeline against `spark://127.0.0.1:<port>` (`SPARK_MASTER`), and,
with `--connect`, starts a Spark Connect server on that cluster and runs them again through `SPARK_REMOTE`
(`sc://127.0.0.1:<port>`). It prints one line per run and writes a markdown table; it stops what it started.
The jars and scripts are pyspark's own (`pyspark/bin/spark-class`, `spark-submit`): nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PIPELINES = ("data_generation", "dedupe", "drift_monitoring", "feature_engineering", "retraining",
             "dedupe_incremental")


def spark_home() -> Path:
    """pyspark's directory: it holds bin/spark-class, bin/spark-submit and the jars (the Spark connect jar too)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Daemon:
    """A started Spark process (its own process group) and its log."""

    name: str
    process: subprocess.Popen
    log: Path

    def wait_for(self, pattern: str, timeout: float = 180.0) -> None:
        """Until `pattern` appears in the log; a clear error with the log's tail when the process dies or time is up."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            if re.search(pattern, text):
                return
            if self.process.poll() is not None:
                break
            time.sleep(1.0)
        tail = "\n".join((self.log.read_text(errors="replace") if self.log.exists() else "").splitlines()[-15:])
        raise RuntimeError(f"Spark {self.name} did not start (no {pattern!r} in {self.log}):\n{tail}")

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL after 20 s."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(SPARK_HOME=str(spark_home()), SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
               PYSPARK_DRIVER_PYTHON=sys.executable)
    for key in ("SPARK_MASTER", "SPARK_REMOTE", "MASTER"):
        env.pop(key, None)
    return env


def _start(name: str, command: list[str], logs: Path) -> Daemon:
    log = logs / f"{name}.log"
    handle = log.open("w")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=_environment(),
                               start_new_session=True)
    return Daemon(name, process, log)


def start_master(logs: Path) -> tuple[Daemon, str]:
    """Spark's standalone master on 127.0.0.1; returns it and its URL."""
    port = free_port()
    master = _start("master", [str(spark_home() / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master",
                               "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(free_port())], logs)
    master.wait_for(r"I have been elected leader")
    return master, f"spark://127.0.0.1:{port}"


def start_worker(master_url: str, cores: int, memory: str, logs: Path) -> Daemon:
    """One standalone worker with `cores` cores and `memory` for its executors."""
    worker = _start("worker", [str(spark_home() / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker",
                               master_url, "--cores", str(cores), "--memory", memory,
                               "--webui-port", str(free_port()), "--work-dir", str(logs / "work")], logs)
    worker.wait_for(r"Successfully registered with master")
    return worker


def start_connect(master_url: str, logs: Path, settings: dict[str, str] | None = None) -> tuple[Daemon, str]:
    """A Spark Connect server (`SparkConnectServer`, as sbin/start-connect-server.sh starts it) whose Spark
    application runs on `master_url` (a cluster, or local[N]); returns it and its sc:// URL."""
    port = free_port()
    conf = {"spark.connect.grpc.binding.port": str(port), "spark.pyspark.python": sys.executable,
            "spark.ui.enabled": "false", **(settings or {})}
    command = [str(spark_home() / "bin" / "spark-submit"), "--class",
               "org.apache.spark.sql.connect.service.SparkConnectServer", "--master", master_url,
               "--name", "aietl_pipelines-connect"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    server = _start("connect", [*command, "spark-internal"], logs)
    server.wait_for(r"Spark Connect server started")
    return server, f"sc://127.0.0.1:{port}"


def run_pipeline(pipeline: str, variable: str, url: str, project: Path, logs: Path, label: str,
                 timeout: float) -> tuple[int, float, Path]:
    """`kedro run --env spark --pipeline <pipeline>` with `variable`=`url`; exit code, seconds, log."""
    log = logs / f"{label}-{pipeline}.log"
    env = _environment()
    env[variable] = url
    start = time.monotonic()
    with log.open("w") as handle:
        try:
            code = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "spark", "--pipeline", pipeline],
                                  cwd=project, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = -1
    return code, time.monotonic() - start, log


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--pipelines", default=",".join(PIPELINES), help="comma-separated (default: all six)")
    parser.add_argument("--cores", type=int, default=2, help="the worker's cores")
    parser.add_argument("--memory", default="6g", help="the worker's memory for executors")
    parser.add_argument("--connect", action="store_true", help="also run them through a Spark Connect server")
    parser.add_argument("--no-standalone-runs", action="store_true",
                        help="with --connect: only the Spark Connect runs")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the Kedro project (default: here)")
    parser.add_argument("--logs", type=Path, default=Path("data/08_reporting/spark_cluster"))
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per pipeline run")
    args = parser.parse_args(argv)
    pipelines = [p for p in args.pipelines.split(",") if p]
    unknown = sorted(set(pipelines) - set(PIPELINES))
    if unknown:
        parser.error(f"--pipelines: unknown {unknown}; choose from {', '.join(PIPELINES)}")
    logs = args.logs.resolve()
    logs.mkdir(parents=True, exist_ok=True)
    # the daemons run in their own sessions: a SIGTERM to this process must still reach `finally` and stop them
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    daemons: list[Daemon] = []
    rows: list[tuple[str, str, int, float, Path]] = []
    try:
        master, master_url = start_master(logs)
        daemons.append(master)
        daemons.append(start_worker(master_url, args.cores, args.memory, logs))
        print(f"standalone cluster: {master_url} (1 worker, {args.cores} cores, {args.memory}); logs in {logs}")
        runs = [] if args.no_standalone_runs and args.connect else [("standalone", "SPARK_MASTER", master_url)]
        if args.connect:  # started after the standalone runs: its application holds the worker's cores while it lives
            runs.append(("connect", "SPARK_REMOTE", ""))
        for label, variable, url in runs:
            if label == "connect":
                server, url = start_connect(master_url, logs)
                daemons.append(server)
                print(f"Spark Connect server: {url}")
            for pipeline in pipelines:
                code, seconds, log = run_pipeline(pipeline, variable, url, args.project, logs, label, args.timeout)
                rows.append((label, pipeline, code, seconds, log))
                print(f"{label:10s} {pipeline:20s} {'ok' if code == 0 else f'FAILED ({code})':12s} "
                      f"{seconds:7.1f} s  {log}", flush=True)
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
    table = ["| via | pipeline | result | seconds (kedro run, JVM start included) | log |", "| --- | --- | --- | --- | --- |"]
    table += [f"| {label} | {p} | {'ok' if c == 0 else f'failed ({c})'} | {s:.1f} | {log.name} |"
              for label, p, c, s, log in rows]
    (logs / "summary.md").write_text("\n".join(table) + "\n")
    return 0 if rows and all(c == 0 for _, _, c, _, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
