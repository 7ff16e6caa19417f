#!/usr/bin/env python3
"""Ingest benchmark: Agensium's upload + ingest against DuckDB converting the same file.

    pip install duckdb
    cargo build --release
    python3 perf/ingest.py --binary target/release/agensium [--rows 10000000] [--work /var/tmp/agensium-perf]

1. Generates a messy CSV (quoted commas, nulls, 'N/A' in a numeric column, mixed date formats,
   ragged lines).
2. Baseline, in a child process: DuckDB (Python) converts it to Parquet with the same settings the
   server uses (memory_limit 512MB, store_rejects, zstd level 1); wall time and peak RSS.
3. Agensium: a fresh server with DUCKDB_MEMORY_LIMIT=512MB; the file is uploaded with curl
   (GraphQL multipart request, streamed); wall time from the first byte sent to the answer, and
   the server's peak RSS (VmHWM).
   With --late, the file has one more row, whose id is not an integer: the server widens that
   column to text (reading the file three times); DuckDB rejects the row.
4. Concurrency: --concurrent N uploads of a --concurrent-rows file at once; all must be ingested
   with the right row count; the server's peak RSS.
Prints a Markdown table row for perf/RESULTS.md. Only loopback traffic; everything stops by itself.
"""
import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def generate(path, rows):
    import duckdb

    if os.path.exists(path):
        return
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"""
        COPY (
          SELECT
            i AS id,
            CASE WHEN i % 97 = 0 THEN NULL WHEN i % 13 = 0 THEN 'Smith, ' || (i % 1000)::VARCHAR
                 ELSE 'name_' || (i % 100000)::VARCHAR END AS name,
            CASE WHEN i % 101 = 0 THEN 'N/A' ELSE round((i * 7919) % 100000 / 100.0, 2)::VARCHAR END AS amount,
            CASE WHEN i % 1000 = 0 THEN strftime(DATE '2020-01-01' + (i % 2000)::INTEGER, '%d/%m/%Y')
                 ELSE strftime(DATE '2020-01-01' + (i % 2000)::INTEGER, '%Y-%m-%d') END AS day,
            'user' || (i % 500000)::VARCHAR || '@example.com' AS email,
            ['alpha', 'beta', 'gamma', 'delta'][(i % 4) + 1] AS category,
            (i % 2 = 0) AS flag,
            CASE WHEN i % 17 = 0 THEN NULL ELSE 'note ' || md5(i::VARCHAR) END AS note
          FROM range({rows}) t(i)
        ) TO '{path}' (FORMAT csv, HEADER true)
    """)
    with open(path, "a") as f:  # ragged lines: kept as rejects, not dropped
        for i in range(100):
            f.write(f"{rows + i},only,three\n")


def peak_rss_mb_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def baseline(path, out):
    code = f"""
import duckdb, time, resource
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute("SET memory_limit='512MB'")
con.execute("SET threads=2")
t = time.perf_counter()
con.execute("COPY (SELECT * FROM read_csv('{path}', store_rejects = true)) TO '{out}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)")
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    seconds, rss = subprocess.check_output([sys.executable, "-c", code]).split()[-2:]
    return float(seconds), float(rss)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def graphql(port, query, variables=None, token=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})},
    )
    return json.load(urllib.request.urlopen(req, timeout=60))


def wait_job(port, token, job, query, every=0.1):
    """Polls `query` (with `$j`, the job's id) until the job ends; returns its `job`."""
    while True:
        body = graphql(port, query, {"j": job}, token)["data"]["job"]
        if body["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return body
        time.sleep(every)


def start_server(binary, work, memory_limit="512MB"):
    data = tempfile.mkdtemp(dir=work)
    port = free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", DATA_DIR=data, DUCKDB_MEMORY_LIMIT=memory_limit,
               DUCKDB_THREADS="2", MAX_UPLOAD_SIZE="8GiB", RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    proc = subprocess.Popen([binary, "serve"], env=env)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
            break
        except Exception:
            time.sleep(0.2)
    token = graphql(port, 'mutation { signUp(email: "bench@example.com", password: "benchmark password") { accessToken } }')
    return proc, port, data, token["data"]["signUp"]["accessToken"]


def upload(port, token, path):
    ops = json.dumps({"query": "mutation($f: Upload!) { uploadDataset(file: $f) { rowCount rejectedRowCount } }",
                      "variables": {"f": None}})
    return subprocess.Popen(
        ["curl", "-sS", "--max-time", "1800", f"http://127.0.0.1:{port}/graphql", "-H", f"authorization: Bearer {token}",
         "-F", f"operations={ops}", "-F", 'map={"0":["variables.f"]}', "-F", f"0=@{path}"],
        stdout=subprocess.PIPE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--concurrent", type=int, default=10)
    ap.add_argument("--concurrent-rows", type=int, default=4_700_000)
    ap.add_argument("--work", default="/var/tmp/agensium-perf")
    ap.add_argument("--late", action="store_true",
                    help="append a row whose id is not an integer, after every row DuckDB samples: "
                         "the server must widen that column (three reads of the file)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)

    if args.skip_single:
        args.rows = 0
    big = os.path.join(args.work, f"messy-{args.rows}.csv")
    if args.rows and args.late:
        generate(big, args.rows)
        late = os.path.join(args.work, f"messy-{args.rows}-late.csv")
        if not os.path.exists(late):
            shutil.copyfile(big, late + ".tmp")
            with open(late + ".tmp", "a") as f:
                f.write("A-1,late,1.5,2024-01-01,late@example.com,alpha,true,late\n")
            os.rename(late + ".tmp", late)
        big = late
    if args.rows:
        single(args, big)
    if args.concurrent:
        concurrent(args)


def single(args, big):
    generate(big, args.rows)
    size_mb = os.path.getsize(big) / 1e6

    duck_s, duck_rss = baseline(big, os.path.join(args.work, "baseline.parquet"))

    proc, port, data, token = start_server(args.binary, args.work)
    try:
        t = time.perf_counter()
        out = json.loads(upload(port, token, big).communicate()[0])
        ours_s = time.perf_counter() - t
        rss = peak_rss_mb_of(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)
    result = out["data"]["uploadDataset"]
    print(f"| ingest {size_mb:.0f} MB CSV ({args.rows:,} rows) | agensium {ours_s:.1f} s | duckdb {duck_s:.1f} s "
          f"| ratio {ours_s / duck_s:.2f} | server peak RSS {rss:.0f} MB (duckdb alone {duck_rss:.0f} MB) "
          f"| rows {result['rowCount']:.0f}, rejects {result['rejectedRowCount']:.0f} |")



def concurrent(args):
    mid = os.path.join(args.work, f"messy-{args.concurrent_rows}.csv")
    generate(mid, args.concurrent_rows)
    proc, port, data, token = start_server(args.binary, args.work)
    try:
        t = time.perf_counter()
        uploads = [upload(port, token, mid) for _ in range(args.concurrent)]
        results = [json.loads(u.communicate()[0]) for u in uploads]
        took = time.perf_counter() - t
        rss = peak_rss_mb_of(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)
    ok = sum(1 for r in results if r.get("data") and r["data"]["uploadDataset"]["rowCount"] == args.concurrent_rows)
    for r in results:
        if not (r.get("data") and r["data"]["uploadDataset"]):
            print("failed:", json.dumps(r)[:300], file=sys.stderr)
    print(f"| {args.concurrent} concurrent uploads of {os.path.getsize(mid) / 1e6:.0f} MB | {took:.1f} s "
          f"| ingested correctly: {ok}/{args.concurrent} | server peak RSS {rss:.0f} MB |")


if __name__ == "__main__":
    main()
