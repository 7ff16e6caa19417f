#!/usr/bin/env python3
"""Where a cleanse's memory goes: the plan of perf/cleanse.py through the API once, with the
server's RSS sampled every 200 ms, and DuckDB's quantile aggregates measured on their own.

    pip install duckdb
    cargo build --release
    python3 perf/cleanse_memory.py --binary $CARGO_TARGET_DIR/release/agensium [--rows 10000000]
    MALLOC_CONF=background_thread:false,dirty_decay_ms:10000,muzzy_decay_ms:0 python3 perf/cleanse_memory.py …

1. A fresh server (`DUCKDB_MEMORY_LIMIT=512MB`, 2 threads) receives the messy CSV of
   perf/ingest.py; `runTool(clean-my-data)` runs the eight-agent plan of perf/cleanse.py. Prints
   the time, the peak RSS before the cleanse (the upload) and over the whole run (VmHWM), and
   the highest RSS samples with their times; with `RUST_LOG=warn,agensium::jobs::worker=debug,
   agensium::engine::cleanse=debug` the server logs each stage, to line the samples up with.
   `MALLOC_CONF` reaches the server: jemalloc reads it after the server's built-in options, so
   the line above measures jemalloc's defaults against the built-in purging.
2. `--quantiles`: in DuckDB (Python, 512 MB, 2 threads), over 10M doubles in a table, the memory
   above the table of three quantile aggregates (two `quantile_cont` and a `median`) against
   one `quantile_cont` over a list of fractions, each in a fresh process.
"""
import argparse
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cleanse import run_cleanse  # noqa: E402
from ingest import generate, graphql, start_server, upload  # noqa: E402


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) // 1024
    return 0


def cleanse(args):
    csv = os.path.join(args.work, f"messy-{args.rows}.csv")
    generate(csv, args.rows)
    proc, port, data_dir, token = start_server(args.binary, args.work)
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            samples.append((time.time(), status(proc.pid, "VmRSS:")))
            time.sleep(0.2)

    try:
        upload(port, token, csv).communicate()
        dataset = graphql(port, "{ datasets { nodes { id } } }", None, token)["data"]["datasets"]["nodes"][0]["id"]
        before = status(proc.pid, "VmHWM:")
        sampler = threading.Thread(target=sample)
        sampler.start()
        took, job = run_cleanse(port, token, dataset)
        done.set()
        sampler.join()
        peak = status(proc.pid, "VmHWM:")
    finally:
        done.set()
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"| cleanse {args.rows:,} rows | {job['status']} in {took:.1f} s | peak RSS before the cleanse {before} MB "
          f"| peak RSS {peak} MB | MALLOC_CONF={os.environ.get('MALLOC_CONF', '(built-in)')} |")
    top = sorted(samples, key=lambda s: -s[1])[:5]
    print("highest samples: " + ", ".join(f"{time.strftime('%H:%M:%S', time.gmtime(t))} {r} MB" for t, r in top))


QUANTILES = r"""
import duckdb, resource, sys, time
c = duckdb.connect()
c.execute("SET memory_limit = '512MB'"); c.execute("SET threads = 2")
c.execute("CREATE TABLE t AS SELECT random() * 1000 AS x FROM range(10000000)")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
t = time.perf_counter()
c.execute(sys.argv[1]).fetchall()
took = time.perf_counter() - t
print(f"| {sys.argv[1]} | {took:.2f} s | {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 - base} MB above the table |")
"""


def quantiles():
    for query in ["SELECT quantile_cont(x, 0.25), quantile_cont(x, 0.75), median(x) FROM t",
                  "SELECT quantile_cont(x, [0.25, 0.75, 0.5]) FROM t"]:
        subprocess.run([sys.executable, "-c", QUANTILES, query], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--work", default="/var/tmp/agensium-perf")
    ap.add_argument("--quantiles", action="store_true", help="only the DuckDB quantile measurement")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if args.quantiles:
        quantiles()
        return
    if not args.binary:
        sys.exit("--binary is required")
    cleanse(args)


if __name__ == "__main__":
    main()
