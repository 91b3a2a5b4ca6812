"""Print the settings as a Markdown table for the README (tests/test_docs.py checks it is there)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.settings import settings_help  # noqa: E402

print("| variable | default | what it does |")
print("| --- | --- | --- |")
for name, default, help_text in settings_help():
    print(f"| `{name}` | `{default}` | {help_text} |")
