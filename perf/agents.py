#!/usr/bin/env python3
"""Every agent of Profile My Data on the 10-million-row messy CSV, through the API.

    pip install duckdb
    cargo build --release
    python3 perf/agents.py --binary target/release/agensium [--rows 10000000] [--work /var/tmp/agensium-perf]

Uploads the messy CSV of perf/ingest.py (same generator; not timed) to a fresh server
(`DUCKDB_MEMORY_LIMIT=512MB`, `DUCKDB_THREADS=2`), runs `runTool(profile-my-data)` with its
default agents (profiler, risk, tests, readiness), timed from the mutation to COMPLETED, and
prints each agent's own execution time, the server's peak RSS, and, for comparison in the same
run, the unified profiler alone (perf/profile.py's measure). Then renders the three report
downloads and prints their sizes and times. Only loopback traffic; everything stops by itself.
"""
import argparse
import json
import os
import shutil
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import generate, graphql, peak_rss_mb_of, start_server, upload  # noqa: E402

RUN = "mutation($d: ID!, $a: [ID!]) { runTool(input: { toolId: \"profile-my-data\", datasetId: $d, agents: $a }) { id } }"
JOB = ("query($j: ID!) { job(id: $j) { status error { code message } "
       "report { agents { agentId executionTimeMs summaryMetrics } } } }")
DOWNLOADS = "query($j: ID!) { job(id: $j) { downloads { format url sizeBytes } } }"


def run(port, token, dataset, agents):
    started = time.perf_counter()
    job = graphql(port, RUN, {"d": dataset, "a": agents}, token)["data"]["runTool"]["id"]
    while True:
        body = graphql(port, JOB, {"j": job}, token)["data"]["job"]
        if body["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            assert body["status"] == "COMPLETED", body
            return job, time.perf_counter() - started, body["report"]["agents"]
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--work", default="/var/tmp/agensium-perf")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    csv = os.path.join(args.work, f"messy-{args.rows}.csv")
    if not os.path.exists(csv):
        generate(csv, args.rows)
    size_mb = os.path.getsize(csv) / 1e6

    # Each measure on a fresh server, so that no profile is cached from the other.
    _, alone, _, _ = measure(args, csv, ["unified-profiler"])
    job, total, agents, peak, port, token, proc, data = measure(args, csv, None, keep=True)
    try:
        times = ", ".join(f"{a['agentId']} {a['executionTimeMs'] / 1000:.1f} s" for a in agents)
        print(f"| every default agent on the {size_mb:.0f} MB CSV ({args.rows:,} rows) through the API | {total:.1f} s "
              f"| unified profiler alone {alone:.1f} s | {times} | server peak RSS {peak:.0f} MB |")
        started = time.perf_counter()
        links = graphql(port, DOWNLOADS, {"j": job}, token)["data"]["job"]["downloads"]
        rendered = time.perf_counter() - started
        sizes = ", ".join(f"{d['format']} {d['sizeBytes'] / 1e3:.0f} kB" for d in links)
        for d in links:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{d['url']}", timeout=60).read()
        print(f"| report downloads (JSON, Excel, HTML) of that job | rendered in {rendered:.2f} s | {sizes} |")
    finally:
        stop(proc, data)


def stop(proc, data):
    proc.terminate()
    proc.wait()
    shutil.rmtree(data, ignore_errors=True)


def measure(args, csv, agents, keep=False):
    """Uploads the CSV to a fresh server and runs the agents (None: the tool's default), watching
    the server's peak RSS. Returns (job, seconds, agent results, peak MB) and, with `keep`, the
    still-running server (port, token, process, data directory)."""
    proc, port, data, token = start_server(args.binary, args.work)
    try:
        upload(port, token, csv).communicate()
        dataset = graphql(port, "{ datasets(first: 1) { nodes { id } } }", None, token)["data"]["datasets"]["nodes"][0]["id"]
        peak = [0.0]
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], peak_rss_mb_of(proc.pid))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            job, seconds, results = run(port, token, dataset, agents)
        finally:
            done.set()
            watcher.join()
    except BaseException:
        stop(proc, data)
        raise
    if keep:
        return job, seconds, results, peak[0], port, token, proc, data
    stop(proc, data)
    return job, seconds, results, peak[0]


if __name__ == "__main__":
    main()
