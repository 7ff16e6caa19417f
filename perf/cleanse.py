#!/usr/bin/env python3
"""Cleanse benchmark: Clean My Data's full eight-agent chain (through the API) against the same
steps written by hand in DuckDB SQL and in pandas.

    pip install duckdb pandas pyarrow
    cargo build --release
    python3 perf/cleanse.py --binary $CARGO_TARGET_DIR/release/agensium [--rows 10000000] [--work /var/tmp/agensium-perf]
        [--memory 512MB]

1. Generates the messy CSV of perf/ingest.py (same generator) and uploads it to a fresh server
   (`DUCKDB_MEMORY_LIMIT` from `--memory`, 512MB by default; `DUCKDB_THREADS=2`); the upload is
   not timed.
2. Agensium: `runTool(clean-my-data)` with all eight agents (plan below), timed from the
   mutation to COMPLETED (polling `job`): sampling, the preview, the cleanse, the integrity
   checks and publishing the cleaned and quarantined versions. Server peak RSS (VmHWM).
3. Baselines over the server's own Parquet copy, in child processes, writing the cleaned rows
   and the quarantined rows to Parquet:
   - DuckDB (Python) with the same limits running one hand-written SQL script of the same steps
     (when DuckDB runs out of memory under that limit, it is timed again with 4 GB, and says so:
     `--memory 4GB` gives both the same);
   - pandas (pyarrow reading the Parquet) doing the same steps.
   The row counts of the three outputs are printed: they must agree.
4. Fuzzy duplicates on a million people (--fuzzy-rows): near-duplicate names within postcodes.
Prints Markdown table rows for perf/RESULTS.md. Only loopback traffic; everything stops by itself.

The plan: null tokens → null; quarantine rows without a name or with an amount outside
[0, 990] or not a number; amount → float; trim and collapse spaces in text, emails lower-cased,
category upper-cased with a synonym, dates from two formats to ISO; exact duplicates removed;
amount's nulls → median, note's → 'none'; amount's outliers (IQR, k = 1.5) capped.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import generate, graphql, peak_rss_mb_of, start_server, upload, wait_job  # noqa: E402

PLAN = {
    "cleanse-previewer": {"sample_size": 10000},
    "quarantine-agent": {"required_columns": ["name"], "ranges": [{"column": "amount", "min": 0, "max": 990}]},
    "type-fixer": {"columns": {"amount": "float"}, "auto_detect": False},
    "field-standardization": {
        "date_columns": ["day"],
        "date_formats": ["%d/%m/%Y"],
        "case": {"category": "upper"},
        "value_maps": {"category": {"ALPHA": "A"}},
        "email_columns": ["email"],
        "phone_columns": [],
    },
    "duplicate-resolver": {"mode": "exact"},
    "null-handler": {"strategies": {"amount": "median", "note": "constant"}, "constants": {"note": "none"},
                     "auto": False},
    "outlier-remover": {"columns": ["amount"], "method": "iqr", "action": "cap"},
    "cleanse-writeback": {},
}
CLEAN = "mutation($d: ID!, $p: JSON) { runTool(input: { toolId: \"clean-my-data\", datasetId: $d, parameters: $p }) { id } }"
JOB = ("query($j: ID!) { job(id: $j) { status error { code message } output { rowCount } "
       "report { cleanse { rowsIn rowsOut rowsRemoved rowsQuarantined checks { name passed } } } } }")

TOKENS = "('', 'n/a', 'na', 'null', '?', '-')"

SQL = r"""
SET enable_progress_bar = false;
SET memory_limit = '{memory}';
SET threads = 2;
CREATE MACRO tok(v) AS CASE WHEN lower(trim(v)) IN {tokens} THEN NULL ELSE v END;
CREATE MACRO clean(v) AS regexp_replace(trim(v), '\s+', ' ', 'g');
CREATE TEMP VIEW typed AS
  SELECT id, tok(name) AS name, tok(amount) AS amount_raw, TRY_CAST(trim(tok(amount)) AS DOUBLE) AS amount,
         tok(day) AS day, tok(email) AS email, tok(category) AS category, flag, tok(note) AS note
  FROM read_parquet('{data}');
CREATE TEMP VIEW bad AS
  SELECT *, concat_ws('; ',
      CASE WHEN name IS NULL OR trim(name) = '' THEN 'missing name' END,
      CASE WHEN amount < 0 OR amount > 990 THEN 'amount out of range' END,
      CASE WHEN amount IS NULL AND amount_raw IS NOT NULL AND trim(amount_raw) <> '' THEN 'amount is not a number' END) AS reason
  FROM typed;
COPY (SELECT * EXCLUDE (amount_raw) FROM bad WHERE reason <> '' ORDER BY id) TO '{out}/quarantine.parquet' (FORMAT parquet);
COPY (
  WITH good AS (
    SELECT id, clean(name) AS name, amount,
           strftime(coalesce(TRY_CAST(trim(day) AS DATE), CAST(try_strptime(trim(day), '%d/%m/%Y') AS DATE)), '%Y-%m-%d') AS day,
           lower(trim(email)) AS email,
           CASE upper(clean(category)) WHEN 'ALPHA' THEN 'A' ELSE upper(clean(category)) END AS category,
           flag, clean(note) AS note
    FROM bad WHERE reason = ''),
  dedup AS (SELECT DISTINCT ON (id, name, amount, day, email, category, flag, note) * FROM good),
  filled AS (SELECT * REPLACE (coalesce(amount, (SELECT median(amount) FROM dedup)) AS amount,
                               coalesce(note, 'none') AS note) FROM dedup),
  bounds AS (SELECT quantile_cont(amount, 0.25) AS q1, quantile_cont(amount, 0.75) AS q3 FROM filled)
  SELECT filled.* REPLACE (CASE WHEN amount < q1 - 1.5 * (q3 - q1) THEN q1 - 1.5 * (q3 - q1)
                                WHEN amount > q3 + 1.5 * (q3 - q1) THEN q3 + 1.5 * (q3 - q1)
                                ELSE amount END AS amount)
  FROM filled, bounds ORDER BY id
) TO '{out}/data.parquet' (FORMAT parquet);
"""

DUCK = r"""
import duckdb, json, sys, time
sql = sys.stdin.read()
con = duckdb.connect()
t = time.perf_counter()
for statement in [s for s in sql.split(';\n') if s.strip()]:
    con.execute(statement)
took = time.perf_counter() - t
rows = con.execute("SELECT count(*) FROM read_parquet('{out}/data.parquet')").fetchone()[0]
quarantined = con.execute("SELECT count(*) FROM read_parquet('{out}/quarantine.parquet')").fetchone()[0]
print(json.dumps([took, rows, quarantined]))
"""

PANDAS = r"""
import json, resource, time
import numpy as np, pandas as pd
t = time.perf_counter()
df = pd.read_parquet('{data}')
tokens = {{'', 'n/a', 'na', 'null', '?', '-'}}
text = ['name', 'amount', 'day', 'email', 'category', 'note']
for c in text:
    s = df[c]
    df[c] = s.where(~s.str.strip().str.lower().isin(tokens), None)
amount = pd.to_numeric(df['amount'].str.strip(), errors='coerce')
reason = pd.Series('', index=df.index, dtype=object)
for cond, text in [(df['name'].isna() | (df['name'].str.strip() == ''), 'missing name'),
                   ((amount < 0) | (amount > 990), 'amount out of range'),
                   (amount.isna() & df['amount'].notna() & (df['amount'].str.strip() != ''), 'amount is not a number')]:
    sep = np.where(reason == '', '', '; ')
    reason = reason.where(~cond, reason + sep + text)
bad = reason != ''
quarantine = df[bad].assign(reason=reason[bad])
quarantine.to_parquet('{out}/quarantine.parquet')
good = df[~bad].copy()
good['amount'] = amount[~bad]
clean = lambda s: s.str.strip().str.replace(r'\s+', ' ', regex=True)
good['name'] = clean(good['name'])
day = good['day'].str.strip()
parsed = pd.to_datetime(day, format='%Y-%m-%d', errors='coerce').fillna(pd.to_datetime(day, format='%d/%m/%Y', errors='coerce'))
good['day'] = parsed.dt.strftime('%Y-%m-%d')
good['email'] = good['email'].str.strip().str.lower()
good['category'] = clean(good['category']).str.upper().replace({{'ALPHA': 'A'}})
good['note'] = clean(good['note'])
good = good.drop_duplicates()
good['amount'] = good['amount'].fillna(good['amount'].median())
good['note'] = good['note'].fillna('none')
q1, q3 = good['amount'].quantile(0.25), good['amount'].quantile(0.75)
good['amount'] = good['amount'].clip(q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))
good.to_parquet('{out}/data.parquet')
took = time.perf_counter() - t
print(json.dumps([took, len(good), int(bad.sum()), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))
"""


def duckdb_baseline(data, out, memory):
    """The hand-written script under the server's memory limit; when DuckDB runs out of memory
    there, again with 4 GB (reported), so that there is a time to compare with."""
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    sql = SQL.format(tokens=TOKENS, data=data, out=out, memory=memory)
    result = subprocess.run([sys.executable, "-c", DUCK.format(out=out)], input=sql.encode(), capture_output=True,
                            cwd=out)
    if result.returncode:
        if "Out of Memory" in result.stderr.decode() and memory != "4GB":
            print(f"hand-written DuckDB SQL: out of memory under {memory}; timed again with 4GB", file=sys.stderr)
            return duckdb_baseline(data, out, "4GB")
        sys.exit(result.stderr.decode())
    return json.loads(result.stdout.decode().strip().splitlines()[-1]) + [memory]


def pandas_baseline(data, out):
    os.makedirs(out, exist_ok=True)
    result = subprocess.run([sys.executable, "-c", PANDAS.format(data=data, out=out)], capture_output=True)
    if result.returncode:
        sys.exit(result.stderr.decode())
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def run_cleanse(port, token, dataset):
    t = time.perf_counter()
    body = graphql(port, CLEAN, {"d": dataset, "p": PLAN}, token)
    if body.get("errors"):
        sys.exit(json.dumps(body))
    body = wait_job(port, token, body["data"]["runTool"]["id"], JOB)
    return time.perf_counter() - t, body


FUZZY = ("mutation($d: ID!, $p: JSON) { runTool(input: { toolId: \"clean-my-data\", datasetId: $d, "
         "agents: [\"duplicate-resolver\", \"cleanse-writeback\"], parameters: $p }) { id } }")
FUZZY_PLAN = {"duplicate-resolver": {"mode": "fuzzy", "key_columns": ["name"], "block_column": "zip",
                                     "similarity_threshold": 0.92}}


def generate_people(path, rows):
    """People with near-duplicate names: every tenth row repeats an earlier person of its postcode
    with one letter changed; about 100 people per postcode."""
    import duckdb

    if os.path.exists(path):
        return
    blocks = max(rows // 100, 1)
    duckdb.connect().execute(f"""
        COPY (
          WITH base AS (
            SELECT i, (i % {blocks})::VARCHAR AS zip,
                   ['James', 'Mary', 'Robert', 'Patricia', 'John', 'Jennifer', 'Michael', 'Linda'][(hash(i) % 8)::BIGINT + 1]
                     || ' ' || ['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller'][(hash(i * 7) % 7)::BIGINT + 1]
                     || ' ' || (hash(i * 13) % 100000)::VARCHAR AS name
            FROM range({rows}) t(i))
          SELECT a.i AS id, a.zip,
                 CASE WHEN a.i % 10 = 9 AND b.name IS NOT NULL THEN substr(b.name, 1, 2) || substr(b.name, 4)
                      ELSE a.name END AS name
          FROM base a LEFT JOIN base b ON b.i = a.i - 9 * {blocks}
          ORDER BY a.i
        ) TO '{path}' (FORMAT csv, HEADER true)
    """)


def fuzzy(args):
    """Fuzzy duplicates on --fuzzy-rows people: mutation to COMPLETED, rows removed, peak RSS."""
    csv = os.path.join(args.work, f"people-{args.fuzzy_rows}.csv")
    generate_people(csv, args.fuzzy_rows)
    proc, port, data_dir, token = start_server(args.binary, args.work)
    try:
        out = json.loads(upload(port, token, csv).communicate()[0])
        if not out.get("data"):
            sys.exit(json.dumps(out))
        dataset = graphql(port, "{ datasets { nodes { id } } }", None, token)["data"]["datasets"]["nodes"][0]["id"]
        t = time.perf_counter()
        body = graphql(port, FUZZY, {"d": dataset, "p": FUZZY_PLAN}, token)
        if body.get("errors"):
            sys.exit(json.dumps(body))
        body = wait_job(port, token, body["data"]["runTool"]["id"], JOB, every=0.2)
        took = time.perf_counter() - t
        rss = peak_rss_mb_of(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)
    if body["status"] != "COMPLETED":
        sys.exit(json.dumps(body))
    m = body["report"]["cleanse"]
    print(f"| fuzzy duplicates (Jaro-Winkler >= 0.92 within postcodes), {args.fuzzy_rows:,} rows | {took:.1f} s "
          f"| rows removed {m['rowsRemoved']:.0f} | server peak RSS {rss:.0f} MB |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--work", default="/var/tmp/agensium-perf")
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument("--fuzzy-rows", type=int, default=1_000_000, help="0 skips the fuzzy run")
    ap.add_argument("--skip-chain", action="store_true")
    ap.add_argument("--memory", default="512MB", help="DUCKDB_MEMORY_LIMIT of the server, and the script's limit")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if args.fuzzy_rows:
        fuzzy(args)
    if args.skip_chain:
        return
    csv = os.path.join(args.work, f"messy-{args.rows}.csv")
    generate(csv, args.rows)

    proc, port, data_dir, token = start_server(args.binary, args.work, args.memory)
    try:
        out = json.loads(upload(port, token, csv).communicate()[0])
        if not out.get("data"):
            sys.exit(json.dumps(out))
        datasets = graphql(port, "{ datasets { nodes { id } } }", None, token)["data"]["datasets"]["nodes"]
        dataset = datasets[0]["id"]
        parquet = next(os.path.join(root, f) for root, _, files in os.walk(os.path.join(data_dir, "datasets"))
                       for f in files if f == "data.parquet" and dataset in root)
        ours_s, job = run_cleanse(port, token, dataset)
        rss = peak_rss_mb_of(proc.pid)
        if job["status"] != "COMPLETED":
            sys.exit(json.dumps(job))
        manifest = job["report"]["cleanse"]

        base = os.path.join(args.work, "cleanse-baseline")
        shutil.rmtree(base, ignore_errors=True)
        duck_s, duck_rows, duck_q, duck_memory = duckdb_baseline(parquet, os.path.join(base, "duckdb"), args.memory)
        if args.skip_pandas:
            pandas_s, pandas_rows, pandas_q, pandas_rss = float("nan"), None, None, float("nan")
        else:
            pandas_s, pandas_rows, pandas_q, pandas_rss = pandas_baseline(parquet, os.path.join(base, "pandas"))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)

    checks = "all passed" if all(c["passed"] for c in manifest["checks"]) else json.dumps(manifest["checks"])
    print(f"| cleanse {args.rows:,} rows, 8 agents | agensium {ours_s:.1f} s ({args.memory}) | hand-written DuckDB SQL {duck_s:.1f} s "
          f"({duck_memory}) "
          f"| ratio {ours_s / duck_s:.2f} | pandas {pandas_s:.1f} s | pandas / agensium {pandas_s / ours_s:.1f} |")
    print(f"| rows out / quarantined | agensium {manifest['rowsOut']:.0f} / {manifest['rowsQuarantined']:.0f} "
          f"| duckdb {duck_rows} / {duck_q} | pandas {pandas_rows} / {pandas_q} | checks {checks} |")
    print(f"| server peak RSS (DUCKDB_MEMORY_LIMIT={args.memory}) | {rss:.0f} MB | pandas peak RSS {pandas_rss:.0f} MB |")


if __name__ == "__main__":
    main()
