#!/usr/bin/env python3
"""Checks an HTML report in a real headless browser.

    python3 tests/browser/check_report.py REPORT.html --screenshot OUT.png

Opens the file in Chromium (Debian's, /usr/bin/chromium, unless --chromium or $CHROMIUM says
otherwise) through Playwright, blocks and records every request that is not for the file itself,
and checks that:
  - no such request was attempted (the page is self-contained);
  - the page loads and its title starts with "Data quality report";
  - the quality score is visible;
  - there is at least one histogram and one top-values chart (svg.histogram, svg.top-values),
    each with a non-zero bounding box, and every chart has role="img" and an aria-label;
  - nothing was logged to the console as an error, and no page error was raised.
It takes a full-page screenshot, prints a JSON summary on stdout and exits 0 when every check
passed, 1 when one failed, 2 when the browser or Playwright is missing.
"""

import argparse
import json
import os
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the HTML report to check")
    parser.add_argument("--screenshot", type=Path, required=True, help="where to write a full-page PNG")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--timeout-ms", type=int, default=30_000)
    args = parser.parse_args()

    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        print(json.dumps({"ok": False, "error": f"python playwright is missing: {e}"}))
        return 2
    if not Path(args.chromium).exists():
        print(json.dumps({"ok": False, "error": f"chromium is missing at {args.chromium}"}))
        return 2
    report = args.report.resolve()
    if not report.is_file():
        print(json.dumps({"ok": False, "error": f"no such report: {report}"}))
        return 1
    url = report.as_uri()

    failures: list[str] = []
    blocked: list[str] = []
    console_errors: list[str] = []
    page_errors: list[str] = []
    summary: dict = {"report": str(report), "size_bytes": report.stat().st_size}

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            context = browser.new_context(viewport={"width": args.width, "height": 900}, device_scale_factor=1)
            page = context.new_page()
            page.set_default_timeout(args.timeout_ms)

            def route(r):
                if r.request.url.split("#")[0] == url:
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            # Every request, whatever its scheme, goes through the router: only the page passes.
            context.route(lambda _url: True, route)
            page.on("request", lambda req: None if req.url.split("#")[0] == url else blocked.append(req.url))
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))

            response = page.goto(url, wait_until="load")
            page.wait_for_load_state("networkidle")
            summary["loaded"] = response is None or response.ok

            title = page.title()
            summary["title"] = title
            if not title.startswith("Data quality report"):
                failures.append(f"unexpected title {title!r}")

            score = page.locator("#quality-score")
            summary["quality_score_visible"] = score.count() == 1 and score.is_visible()
            if not summary["quality_score_visible"]:
                failures.append("the quality score is not visible")
            else:
                summary["quality_score_text"] = " ".join(score.inner_text().split())

            def boxes(selector: str) -> list[dict]:
                return page.eval_on_selector_all(
                    selector,
                    """els => els.map(e => { const r = e.getBoundingClientRect();
                        return {w: r.width, h: r.height, label: e.getAttribute('aria-label'),
                                role: e.getAttribute('role')}; })""",
                )

            for name, selector in [("histogram", "svg.histogram"), ("top_values", "svg.top-values"),
                                   ("drift_bins", "svg.drift-bins"), ("gauge", "svg.gauge")]:
                found = boxes(selector)
                sized = [b for b in found if b["w"] > 0 and b["h"] > 0]
                summary[f"{name}_charts"] = len(found)
                summary[f"{name}_charts_drawn"] = len(sized)
                if name in ("histogram", "top_values", "gauge") and not sized:
                    failures.append(f"no {selector} with a non-zero bounding box")
                if len(sized) != len(found):
                    failures.append(f"{len(found) - len(sized)} of {len(found)} {selector} have an empty box")

            unlabeled = page.eval_on_selector_all(
                "svg.chart", "els => els.filter(e => e.getAttribute('role') !== 'img' || !e.getAttribute('aria-label')).length"
            )
            if unlabeled:
                failures.append(f"{unlabeled} charts lack role=img or an aria-label")
            bars = page.eval_on_selector_all("svg.histogram rect.bar", "els => els.filter(e => e.getBBox().height > 0).length")
            summary["histogram_bars_drawn"] = bars
            if not bars:
                failures.append("no histogram bar has a height")
            # Nothing may be loaded from elsewhere, not even by CSS.
            external = page.evaluate(
                """() => performance.getEntriesByType('resource').map(e => e.name)"""
            )
            summary["resources"] = external
            if external:
                failures.append(f"resources were requested: {external}")
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            summary["horizontal_overflow_px"] = overflow
            if overflow > 1:
                failures.append(f"the page is {overflow}px wider than the window")

            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.screenshot), full_page=True)
            summary["screenshot"] = str(args.screenshot)
        finally:
            browser.close()

    summary["blocked_requests"] = sorted(set(blocked))
    summary["console_errors"] = console_errors
    summary["page_errors"] = page_errors
    if blocked:
        failures.append(f"{len(set(blocked))} non-file requests were attempted")
    if console_errors:
        failures.append(f"console errors: {console_errors}")
    if page_errors:
        failures.append(f"page errors: {page_errors}")
    summary["failures"] = failures
    summary["ok"] = not failures
    print(json.dumps(summary, indent=2))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
