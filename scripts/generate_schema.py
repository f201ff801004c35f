"""Write the front end's TypeScript types from the field table (``nbcallbacks/schema.py``).

``python scripts/generate_schema.py`` rewrites ``js/src/generated/schema.ts``; ``--check`` exits 1 when the file
is not what the field table generates (CI runs it so).
"""

from __future__ import annotations

import sys
from pathlib import Path

from nbcallbacks.schema import typescript

TARGET = Path(__file__).resolve().parent.parent / "js" / "src" / "generated" / "schema.ts"


def main(argv: list[str]) -> int:
    """Write (or with ``--check`` compare) the generated file; returns the exit status."""
    expected = typescript()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != expected:
            sys.stderr.write(f"{TARGET} is out of date: run python scripts/generate_schema.py\n")
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(expected, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
