#!/usr/bin/env python3
"""Wide DECIMAL and FLOAT files through Clean My Data: preview and run of the default plan,
and of a plan that removes outliers (a segment per column).

    pip install duckdb==2.0.0
    python3 perf/wide_typed.py <agensium binary> <columns, e.g. 200>

Writes a Parquet file of `columns` columns (DECIMAL(10,2) and FLOAT alternately; 5 % nulls, 2 %
outliers) and 2,000 rows, uploads it to a fresh server (`DUCKDB_MEMORY_LIMIT=512MB`), and prints
each call's time and answer and the server's peak RSS. Figures in perf/RESULTS.md.
"""
import json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import duckdb
from ingest import graphql, peak_rss_mb_of, start_server, upload, wait_job

binary, columns = sys.argv[1], int(sys.argv[2])
work = "/var/tmp/agensium-perf"; os.makedirs(work, exist_ok=True)
path = f"{work}/wide-{columns}.parquet"
if not os.path.exists(path):
    items = []
    for i in range(columns):
        ty = "DECIMAL(10,2)" if i % 2 == 0 else "FLOAT"
        items.append(f"CASE WHEN random() < 0.05 THEN NULL WHEN random() < 0.02 THEN 900 + random() * 10 ELSE 50 + random() * 10 END::{ty} AS c{i}")
    duckdb.sql(f"SELECT setseed(0.3); COPY (SELECT {', '.join(items)} FROM range(2000)) TO '{path}' (FORMAT parquet)")
proc, port, data, token = start_server(binary, work)
try:
    out = upload(port, token, path).communicate()[0]
    print(out[:200])
    ds = graphql(port, "{ datasets { nodes { id } } }", token=token)["data"]["datasets"]["nodes"][0]["id"]
    for label, params in [("default", None), ("remove", {"outlier-remover": {"action": "remove"}})]:
        t = time.time()
        r = graphql(port, "mutation($d: ID!, $p: JSON) { previewTool(input: { toolId: \"clean-my-data\", datasetId: $d, parameters: $p }) { rowsBefore rowsAfter } }", {"d": ds, "p": params}, token)
        print(label, "preview", round(time.time() - t, 1), "s", json.dumps(r)[:300])
        t = time.time()
        r = graphql(port, "mutation($d: ID!, $p: JSON) { runTool(input: { toolId: \"clean-my-data\", datasetId: $d, parameters: $p }) { id } }", {"d": ds, "p": params}, token)
        if r.get("errors"):
            print(label, "run refused", r); continue
        job = wait_job(port, token, r["data"]["runTool"]["id"], "query($j: ID!) { job(id: $j) { status error { code message } report { cleanse { rowsIn rowsOut } } } }")
        print(label, "run", round(time.time() - t, 1), "s", json.dumps(job)[:300])
    print("peak RSS", peak_rss_mb_of(proc.pid), "MB")
finally:
    proc.kill()
