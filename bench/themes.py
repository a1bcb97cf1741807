"""Benchmark: grouping free texts into themes (``reports.themes.group_themes``).

Usage (from the repository root)::

    python -m bench.themes            # 300,000 generated answers
    python -m bench.themes 1000000

The answers come from ``bot.cli.textbank.labelled_changes`` (templates, fillers and noise,
each with its topic). The baseline, timed in the same process, is normalising every answer
(``reports.themes.normalise``: what any grouping has to do at least). Printed: seconds, CPU,
peak RSS, the share of answers grouped and the purity of the groups (each group's majority
topic over its size), then the themes; the last line is one JSON object.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections import Counter

from bot.cli.textbank import labelled_changes
from reports.themes import group_themes, normalise


def main(n: int) -> dict[str, object]:
    texts, labels = labelled_changes(n)
    start = time.perf_counter()
    for text in texts:
        normalise(text)
    baseline = time.perf_counter() - start
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu = time.perf_counter(), time.process_time()
    themes = group_themes(texts)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    grouped = sum(t.size for t in themes)
    majority = sum(Counter(labels[i] for i in t.members).most_common(1)[0][1] for t in themes)
    purity = majority / max(grouped, 1)
    print(
        f"{n} texts ({len(set(texts))} distinct): {len(themes)} themes in {seconds:.2f} s "
        f"= {seconds / baseline:.1f}× normalising them ({baseline:.2f} s); {cpu:.2f} s CPU; "
        f"peak RSS {peak:.0f} MiB (before grouping {before / 1024:.0f} MiB); "
        f"{grouped / n:.0%} grouped, purity {purity:.3f}"
    )
    for t in themes:
        print(f"  {t.size:7d}  {t.label}")
    return {"texts": n, "themes_s": round(seconds, 3), "baseline_s": round(baseline, 3),
            "ratio": round(seconds / baseline, 2), "peak_rss_mb": round(peak, 1),
            "grouped": round(grouped / n, 3), "purity": round(purity, 3)}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300_000)))
