#!/usr/bin/env python3
"""Drift benchmark: Agensium's drift detector (through the API) against SciPy/NumPy computing the
same tests on the same data.

    pip install duckdb pyarrow numpy scipy
    cargo build --release
    python3 perf/drift.py --binary target/release/agensium [--rows 10000000] [--work /var/tmp/agensium-perf]

1. Generates two versions of a CSV (--rows rows each, no randomness: DuckDB's `hash` of the row
   number). In the current version `amount` is shifted (+0.05 standard deviations), `day` too
   (+3 days), and the `category` mix changes; `score`, `quantity` and `flag` keep their
   distributions with other values; `id` is unchanged; `legacy_code` is dropped and `channel`
   added.
2. Uploads both to a fresh server (`DUCKDB_MEMORY_LIMIT=512MB`, `DUCKDB_THREADS=2`); not timed.
3. Agensium: `runTool(profile-my-data, agents: ["drift-detector"])` with the current version and
   its baseline, once with `statistical_test: ks` and once with `wasserstein`, each timed from
   the mutation to COMPLETED; server peak RSS.
4. SciPy, in this process, over the server's own canonical Parquet copies (loaded with pyarrow,
   not timed): per numeric column `ks_2samp(method='asymp')` (or `wasserstein_distance`), PSI
   and Jensen-Shannon on 10 equal-width NumPy histogram bins over the combined range; per
   categorical column `chi2_contingency(correction=False)`, PSI and JS on the categories. Timed
   single-threaded, as SciPy runs.
5. Checks that both agree (statistics to 1e-6 relative, p-values above 1e-6 to 5%), and prints
   Markdown table rows for perf/RESULTS.md. Only loopback traffic; everything stops by itself.
"""
import argparse
import glob
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import graphql, peak_rss_mb_of, start_server, upload  # noqa: E402

RUN = """mutation($d: ID!, $b: ID!, $p: JSON) {
  runTool(input: { toolId: "profile-my-data", datasetId: $d, baselineDatasetId: $b,
                   agents: ["drift-detector"], parameters: $p }) { id }
}"""
JOB = """query($j: ID!) {
  job(id: $j) { status progress error { code message }
                report { agents { agentId status summaryMetrics } } }
}"""
NUMERIC = ["id", "amount", "score", "quantity", "day"]
CATEGORICAL = ["category", "flag"]
BINS = 10


def generate(path, rows, version):
    """One version of the benchmark CSV (like ingest.generate: DuckDB writes it, once)."""
    import duckdb

    if os.path.exists(path):
        return
    current = version == "current"
    seed = 7 if current else 0
    # Box-Muller from two hashes of the row number: a normal-ish amount (mean 500, sd 100).
    normal = (f"sqrt(-2 * ln((hash(i * 2 + {seed}) % 1000000 + 1) / 1000001.0))"
              f" * cos(2 * pi() * (hash(i * 2 + 1 + {seed}) % 1000000) / 1000000.0)")
    mix = "[0.4, 0.3, 0.2, 0.1]" if not current else "[0.35, 0.3, 0.2, 0.15]"
    extra = ("['web', 'store', 'phone'][CAST(hash(i * 13) % 3 AS BIGINT) + 1] AS channel" if current
             else "'L' || CAST(hash(i * 17) % 100 AS VARCHAR) AS legacy_code")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"""
        COPY (
          SELECT
            i AS id,
            round(500 + 100 * ({normal}) + {5.0 if current else 0.0}, 2) AS amount,
            round((hash(i * 3 + {seed}) % 1000000) / 10000.0, 4) AS score,
            CAST(hash(i * 5 + {seed}) % 1000 AS BIGINT) AS quantity,
            DATE '2020-01-01' + CAST(hash(i * 7 + {seed}) % 2000 AS INTEGER) + {3 if current else 0} AS day,
            CASE WHEN u < l[1] THEN 'alpha' WHEN u < l[1] + l[2] THEN 'beta'
                 WHEN u < l[1] + l[2] + l[3] THEN 'gamma' ELSE 'delta' END AS category,
            hash(i * 11 + {seed}) % 2 = 0 AS flag,
            {extra}
          FROM (SELECT i, (hash(i * 19 + {seed}) % 1000000) / 1000000.0 AS u, {mix} AS l FROM range({rows}) t(i))
        ) TO '{path}' (FORMAT csv, HEADER true)
    """)


def run_drift(port, token, current, baseline, test):
    params = {"drift-detector": {"statistical_test": test}}
    job = graphql(port, RUN, {"d": current, "b": baseline, "p": params}, token)
    if job.get("errors"):
        raise SystemExit(f"runTool failed: {job['errors']}")
    job = job["data"]["runTool"]["id"]
    while True:
        body = graphql(port, JOB, {"j": job}, token)["data"]["job"]
        if body["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return body
        time.sleep(0.05)


def newest_dataset(port, token):
    listed = graphql(port, "{ datasets(first: 1) { nodes { id } } }", None, token)
    return listed["data"]["datasets"]["nodes"][0]["id"]


def canonical_copy(data, dataset):
    """The server's canonical Parquet copy of a dataset: DATA_DIR/datasets/<owner>/<id>/data.parquet."""
    found = glob.glob(os.path.join(data, "datasets", "*", dataset, "data.parquet"))
    if not found:
        found = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(data, "datasets"))
                 for f in fs if f == "data.parquet" and dataset in d]
    assert found, f"no canonical copy of {dataset} under {data}"
    return found[0]


def load(path, columns):
    """Columns without nulls: numbers as float64 NumPy arrays (dates as epoch seconds, like the
    server), categories as Arrow string arrays."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns)
    out = {}
    for name in columns:
        col = table.column(name).drop_null()
        if name in NUMERIC:
            if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
                col = pc.cast(pc.cast(col, pa.timestamp("s")), pa.int64())
            values = col.to_numpy().astype(np.float64)
            out[name] = values[np.isfinite(values)]
        else:
            out[name] = pc.cast(col, pa.string())
    return out


def psi(b, c):
    import numpy as np

    b = np.where(b == 0, 1e-4, b)
    c = np.where(c == 0, 1e-4, c)
    return float(np.sum((c - b) * np.log(c / b)))


def js(b, c):
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(b, c, base=2) ** 2)


def scipy_drift(baseline, current, test):
    """The drift detector's numbers, computed with SciPy and NumPy. Returns {column: {...}}."""
    import numpy as np
    import pyarrow.compute as pc
    from scipy import stats

    result = {}
    for name in NUMERIC:
        a, b = baseline[name], current[name]
        if test == "ks":
            r = stats.ks_2samp(a, b, method="asymp")
            statistic, p = float(r.statistic), float(r.pvalue)
        else:
            statistic, p = float(stats.wasserstein_distance(a, b)), None
        lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
        ha, _ = np.histogram(a, bins=BINS, range=(lo, hi))
        hb, _ = np.histogram(b, bins=BINS, range=(lo, hi))
        sa, sb = ha / len(a), hb / len(b)
        result[name] = {"statistic": statistic, "pValue": p, "psi": psi(sa, sb), "jsDivergence": js(sa, sb)}
    for name in CATEGORICAL:
        # Counting strings: Arrow's value_counts (C++), as pandas' value_counts would.
        counts = [{str(v["values"]): v["counts"] for v in pc.value_counts(side[name]).to_pylist()}
                  for side in (baseline, current)]
        cats = sorted(set(counts[0]) | set(counts[1]))
        ca = np.array([counts[0].get(c, 0) for c in cats])
        cb = np.array([counts[1].get(c, 0) for c in cats])
        chi2, p, _, _ = stats.chi2_contingency(np.array([ca, cb]), correction=False)
        sa, sb = ca / ca.sum(), cb / cb.sum()
        result[name] = {"statistic": float(chi2), "pValue": float(p), "psi": psi(sa, sb), "jsDivergence": js(sa, sb)}
    return result


def compare(ours, theirs):
    """Largest differences between the server's numbers and SciPy's: (statistic, p-value ratio)."""
    worst_stat, worst_p = 0.0, 0.0
    for name, ref in theirs.items():
        got = ours[name]
        scale = max(abs(ref["statistic"]), 1e-12)
        worst_stat = max(worst_stat, abs(got["statistic"] - ref["statistic"]) / scale)
        if ref["pValue"] is not None and ref["pValue"] > 1e-6:
            worst_p = max(worst_p, abs(got["pValue"] - ref["pValue"]) / ref["pValue"])
    return worst_stat, worst_p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--work", default="/var/tmp/agensium-perf")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    csvs = {v: os.path.join(args.work, f"drift-{v}-{args.rows}.csv") for v in ("baseline", "current")}
    for version, path in csvs.items():
        generate(path, args.rows, version)
    size_mb = sum(os.path.getsize(p) for p in csvs.values()) / 1e6

    proc, port, data, token = start_server(args.binary, args.work)
    try:
        ids = {}
        for version in ("baseline", "current"):
            out = json.loads(upload(port, token, csvs[version]).communicate()[0])
            assert out.get("data") and out["data"]["uploadDataset"], out
            ids[version] = newest_dataset(port, token)

        t = time.perf_counter()
        frames = {v: load(canonical_copy(data, ids[v]), NUMERIC + CATEGORICAL) for v in ids}
        load_s = time.perf_counter() - t

        for test in ("ks", "wasserstein"):
            t = time.perf_counter()
            result = run_drift(port, token, ids["current"], ids["baseline"], test)
            ours_s = time.perf_counter() - t
            rss = peak_rss_mb_of(proc.pid)
            assert result["status"] == "COMPLETED", result
            agent = next(a for a in result["report"]["agents"] if a["agentId"] == "drift-detector")
            metrics = agent["summaryMetrics"]
            ours = {c["column"]: c for c in metrics["columns"]}

            t = time.perf_counter()
            theirs = scipy_drift(frames["baseline"], frames["current"], test)
            scipy_s = time.perf_counter() - t
            worst_stat, worst_p = compare(ours, theirs)
            drifted = sorted(c["column"] for c in metrics["columns"] if c["verdict"] == "drift")

            print(f"| drift ({test}), 2 × {args.rows:,} rows ({size_mb:.0f} MB of CSV), "
                  f"{len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical columns, through the API "
                  f"| {ours_s:.1f} s | SciPy/NumPy {scipy_s:.1f} s (+ {load_s:.1f} s loading the Parquet copies) "
                  f"| ratio {ours_s / scipy_s:.2f} | server peak RSS {rss:.0f} MB "
                  f"| drifted: {', '.join(drifted) or 'none'}; largest difference from SciPy: statistic "
                  f"{worst_stat:.1e} (relative), p-value {worst_p:.1%} |")
            # D, W and chi-square are exact on both sides; p-values are different asymptotic
            # approximations for KS (Stephens' correction here, kstwo at round(e) in SciPy).
            assert worst_stat < 1e-6, (ours, theirs)
            assert worst_p < 0.05, (ours, theirs)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
