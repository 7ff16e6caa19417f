#!/usr/bin/env python3
"""Wide files through Clean My Data: how preview and cleanse times grow with the number of
columns, against pandas doing the same kind of steps on the same file.

    pip install pandas pyarrow
    cargo build --release
    python3 perf/wide.py --binary $CARGO_TARGET_DIR/release/agensium [--columns 50,100,250,500]
        [--rows 2000] [--work /var/tmp/agensium-perf]

For each column count N it generates a CSV of N columns (a quarter each: integers with nulls
and outliers, decimals with nulls and outliers, names with stray spaces and null tokens,
categories in mixed case) and `--rows` rows, uploads it to a fresh server
(`DUCKDB_MEMORY_LIMIT=512MB`, `DUCKDB_THREADS=2`; the upload is not timed), then times, with
the default plan (every agent, automatic choices):
- `previewTool(clean-my-data)` (its sample is the whole file);
- `runTool(clean-my-data)` from the mutation to COMPLETED (polling `job`);
and the server's peak RSS (VmHWM). pandas then does what the default plan does to such a file
— null tokens to NaN, numbers typed, text trimmed and collapsed, exact duplicates dropped,
nulls filled (numbers: median, text: mode), outliers capped by IQR per numeric column — and
writes Parquet, in a child process. Prints Markdown table rows for perf/RESULTS.md.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import graphql, peak_rss_mb_of, start_server, upload, wait_job  # noqa: E402

PREVIEW = ("mutation($d: ID!) { previewTool(input: { toolId: \"clean-my-data\", datasetId: $d }) "
           "{ rowsBefore rowsAfter } }")
CLEAN = "mutation($d: ID!) { runTool(input: { toolId: \"clean-my-data\", datasetId: $d }) { id } }"
JOB = ("query($j: ID!) { job(id: $j) { status error { code message } "
       "report { cleanse { rowsIn rowsOut checks { name passed } } } } }")

NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken", "Dennis", "Margaret", "Linus"]
CATEGORIES = ["alpha", "Beta", "GAMMA", "delta"]
TOKENS = ["", "N/A", "null", "?"]


def generate(path, columns, rows):
    if os.path.exists(path):
        return
    rng = random.Random(columns * 7919 + rows)
    kinds = [i % 4 for i in range(columns)]
    header = ",".join(f"{['int', 'num', 'name', 'cat'][k]}_{i}" for i, k in enumerate(kinds))
    with open(path + ".tmp", "w") as f:
        f.write(header + "\n")
        for _ in range(rows):
            cells = []
            for k in kinds:
                r = rng.random()
                if k == 0:
                    cells.append("" if r < 0.05 else str(rng.randint(0, 100) if r < 0.98 else rng.randint(5000, 9000)))
                elif k == 1:
                    cells.append("" if r < 0.05 else f"{rng.gauss(50, 10) if r < 0.98 else rng.gauss(900, 10):.2f}")
                elif k == 2:
                    cells.append(rng.choice(TOKENS) if r < 0.05 else f" {rng.choice(NAMES)}  {rng.choice(NAMES)} ")
                else:
                    cells.append(rng.choice(CATEGORIES))
            f.write(",".join(cells) + "\n")
    os.replace(path + ".tmp", path)


PANDAS = r"""
import sys, time, resource
import numpy as np, pandas as pd
path, out = sys.argv[1], sys.argv[2]
t = time.perf_counter()
df = pd.read_csv(path, dtype=str, keep_default_na=False)
df = df.replace({"": None, "N/A": None, "null": None, "?": None})
for c in df.columns:
    if c.startswith(("int_", "num_")):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    else:
        df[c] = df[c].str.strip().str.replace(r"\s+", " ", regex=True)
df = df.drop_duplicates()
for c in df.columns:
    if c.startswith(("int_", "num_")):
        df[c] = df[c].fillna(df[c].median())
        q1, q3 = df[c].quantile([0.25, 0.75])
        df[c] = df[c].clip(q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))
    else:
        mode = df[c].mode()
        if len(mode):
            df[c] = df[c].fillna(mode.iloc[0])
df.to_parquet(out)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def pandas_baseline(path, out):
    result = subprocess.run([sys.executable, "-c", PANDAS, path, out], capture_output=True, text=True, check=True)
    seconds, rss = result.stdout.split()
    return float(seconds), float(rss)


def run(args, columns):
    csv = os.path.join(args.work, f"wide-{columns}x{args.rows}.csv")
    generate(csv, columns, args.rows)
    proc, port, data_dir, token = start_server(args.binary, args.work)
    try:
        out = json.loads(upload(port, token, csv).communicate()[0])
        if not out.get("data"):
            sys.exit(json.dumps(out))
        dataset = graphql(port, "{ datasets { nodes { id } } }", None, token)["data"]["datasets"]["nodes"][0]["id"]
        t = time.perf_counter()
        preview = graphql(port, PREVIEW, {"d": dataset}, token)
        preview_s = time.perf_counter() - t
        if preview.get("errors"):
            error = preview["errors"][0]
            preview_text = f"preview failed after {preview_s:.1f} s ({error['extensions']['code']})"
        else:
            preview_text = f"preview {preview_s:.1f} s"
        t = time.perf_counter()
        body = graphql(port, CLEAN, {"d": dataset}, token)
        if body.get("errors"):
            sys.exit(json.dumps(body["errors"]))
        job = wait_job(port, token, body["data"]["runTool"]["id"], JOB)
        run_s = time.perf_counter() - t
        rss = peak_rss_mb_of(proc.pid)
        if job["status"] == "COMPLETED":
            run_text = f"cleanse {run_s:.1f} s"
        else:
            run_text = f"cleanse {job['status']} after {run_s:.1f} s ({(job.get('error') or {}).get('code')})"
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)
    pandas_s, pandas_rss = pandas_baseline(csv, os.path.join(args.work, "wide-pandas.parquet"))
    print(f"| {columns} columns × {args.rows:,} rows | {preview_text} | {run_text} "
          f"| peak RSS {rss:.0f} MB | pandas {pandas_s:.1f} s, {pandas_rss:.0f} MB | cleanse / pandas {run_s / pandas_s:.1f} |",
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--columns", default="50,100,250,500")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--work", default="/var/tmp/agensium-perf")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    for columns in [int(c) for c in args.columns.split(",")]:
        run(args, columns)


if __name__ == "__main__":
    main()
