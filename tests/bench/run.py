"""`make bench`: run every benchmark in turn and print its figures."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    ["bench_collector.py"],
    ["bench_site.py"],
    ["bench_live.py"],
    ["bench_moderation.py"],
    ["bench_wall.py"],
    ["bench_publish.py"],
    ["bench_enrich.py"],
]

failed = 0
for args in BENCHES:
    script = HERE / args[0]
    if not script.exists():
        continue
    print(f"\n== {args[0]} ==", flush=True)
    failed += subprocess.run([sys.executable, str(script), *args[1:]]).returncode != 0
sys.exit(1 if failed else 0)
