#!/usr/bin/env python3
"""The same questions asked of a tracejoin store by another engine, reading
the Parquet files as they are (no schema, no reader option).

usage: answers.py ENGINE STORE_DIR SINCE_US UNTIL_US
  ENGINE   duckdb | spark | chdb (ClickHouse's engine, in process)
  SINCE_US, UNTIL_US  a time window, microseconds since the epoch (UTC)

Prints one JSON object:
  start_type  the engine's type of requests.start (a timestamp type, not an integer)
  labels      {label: failed requests}
  evidence    rows of requests JOIN events ON request_key, for failed requests
  window      requests whose start is in [SINCE, UNTIL), compared as instants
  ids         ids over all requests, the list column exploded
  gateway_only  requests whose flags list contains "gateway_only"
  first_start the earliest start, as the engine prints it

The windows compare instants (epoch microseconds from the timestamp), so a
session time zone cannot change the answer. Standard library plus the engine.
"""

import json
import os
import sys


def duckdb_answers(store, since, until):
    import duckdb

    con = duckdb.connect()
    con.execute(f"CREATE VIEW requests AS SELECT * FROM read_parquet('{store}/requests/**/*.parquet', hive_partitioning=true)")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{store}/events/**/*.parquet', hive_partitioning=true)")
    one = lambda q: con.execute(q).fetchone()[0]
    return {
        "start_type": str(con.execute("SELECT typeof(start) FROM requests LIMIT 1").fetchone()[0]),
        "labels": dict(con.execute("SELECT label, count(*) FROM requests WHERE failed GROUP BY label").fetchall()),
        "evidence": one("SELECT count(*) FROM requests r JOIN events e ON r.request_key = e.request_key WHERE r.failed"),
        "window": one(f"SELECT count(*) FROM requests WHERE epoch_us(start) >= {since} AND epoch_us(start) < {until}"),
        "ids": one("SELECT count(*) FROM (SELECT unnest(ids) FROM requests)"),
        "gateway_only": one("SELECT count(*) FROM requests WHERE list_contains(flags, 'gateway_only')"),
        # As text in SQL: fetching a zoned timestamp into Python wants pytz.
        "first_start": one("SELECT CAST(min(start) AS VARCHAR) FROM requests"),
    }


def spark_answers(store, since, until):
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[1]").appName("tracejoin-store")
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.read.parquet(os.path.join(store, "requests")).createOrReplaceTempView("requests")
    spark.read.parquet(os.path.join(store, "events")).createOrReplaceTempView("events")
    one = lambda q: spark.sql(q).collect()[0][0]
    out = {
        "start_type": dict(spark.table("requests").dtypes)["start"],
        "labels": {r[0]: r[1] for r in spark.sql("SELECT label, count(*) FROM requests WHERE failed GROUP BY label").collect()},
        "evidence": one("SELECT count(*) FROM requests r JOIN events e ON r.request_key = e.request_key WHERE r.failed"),
        "window": one(f"SELECT count(*) FROM requests WHERE unix_micros(start) >= {since} AND unix_micros(start) < {until}"),
        "ids": one("SELECT count(*) FROM (SELECT explode(ids) FROM requests)"),
        "gateway_only": one("SELECT count(*) FROM requests WHERE array_contains(flags, 'gateway_only')"),
        "first_start": str(one("SELECT min(start) FROM requests")),
    }
    spark.stop()
    return out


def chdb_answers(store, since, until):
    import chdb

    req = f"file('{store}/requests/**/*.parquet', Parquet)"
    ev = f"file('{store}/events/**/*.parquet', Parquet)"

    def rows(q):
        res = chdb.query(q, "JSONCompact")
        return json.loads(res.bytes() if hasattr(res, "bytes") else str(res))["data"]

    one = lambda q: rows(q)[0][0]
    return {
        "start_type": one(f"SELECT toTypeName(start) FROM {req} LIMIT 1"),
        "labels": {r[0]: int(r[1]) for r in rows(f"SELECT label, count() FROM {req} WHERE failed GROUP BY label")},
        "evidence": int(one(f"SELECT count() FROM {req} AS r INNER JOIN {ev} AS e ON r.request_key = e.request_key WHERE r.failed")),
        "window": int(one(f"SELECT count() FROM {req} WHERE toUnixTimestamp64Micro(start) >= {since} AND toUnixTimestamp64Micro(start) < {until}")),
        "ids": int(one(f"SELECT count() FROM {req} ARRAY JOIN ids AS id")),
        "gateway_only": int(one(f"SELECT count() FROM {req} WHERE has(flags, 'gateway_only')")),
        "first_start": str(one(f"SELECT min(start) FROM {req}")),
    }


def main():
    engine, store, since, until = sys.argv[1], os.path.abspath(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    answers = {"duckdb": duckdb_answers, "spark": spark_answers, "chdb": chdb_answers}[engine]
    print(json.dumps(answers(store, since, until), sort_keys=True))


if __name__ == "__main__":
    main()
