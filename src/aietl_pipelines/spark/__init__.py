"""Spark implementations of the engine-dependent steps (`engine: spark`, `kedro run --env spark`).

Importing this package needs pyspark; the pandas path never imports it. Java 17 (Debian's
openjdk-17-jre-headless) runs the `local[*]` session of the tests and of `kedro run --env spark`.
"""
