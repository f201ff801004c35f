#!/usr/bin/env bash
# Sets up nbcallbacks on a fresh machine and runs the main job: the quickstart notebook on the embedded,
# offline demo model (no API key). Then opens it in JupyterLab when run from a terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

printf '== Python environment (.venv) with nbcallbacks[demo,plot] and JupyterLab\n'
python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[demo,plot,lab]"

printf '== running notebooks/quickstart.ipynb on the demo model\n'
jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=300 \
  notebooks/quickstart.ipynb --output quickstart.executed.ipynb
python - <<'PY'
import json

nb = json.load(open("notebooks/quickstart.executed.ipynb", encoding="utf-8"))
code = [c for c in nb["cells"] if c["cell_type"] == "code"]
errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
widgets = len(nb.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {}))
print(f"ran {len(code)} code cells: {len(errors)} errors, {widgets} widget models saved "
      "in notebooks/quickstart.executed.ipynb")
for cell in code:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            print("".join(out["text"]).rstrip())
raise SystemExit(1 if errors else 0)
PY

if [ -t 0 ] && [ -t 1 ] && [ -z "${CI:-}" ]; then
  printf '== opening it in JupyterLab (Ctrl-C to stop)\n'
  exec jupyter lab notebooks/quickstart.ipynb
else
  printf '== to explore it: . .venv/bin/activate && jupyter lab notebooks/quickstart.ipynb\n'
fi
