#!/usr/bin/env bash
# Installs everything the checks and tests need on a fresh machine, then runs all of them:
# Chromium (Debian package) for the browser tests, a virtualenv with the package and its test extra,
# the front end's npm packages; then ruff, mypy, the import contracts (import-linter), the generated front-end
# schema, tsc, vitest and pytest (unit, notebook and browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

if ! command -v chromium >/dev/null 2>&1; then
  step "installing Chromium for the browser tests (apt-get)"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
fi

# The OTLP backend of the otel_backend tests (an MLflow tracking server) is heavy: it gets its own virtualenv,
# created once and kept (the check below takes a second when it is already there).
MLFLOW_VERSION="3.17.2"
if ! .venv-otel-backend/bin/python -c "import sys, mlflow; sys.exit(mlflow.__version__ != '$MLFLOW_VERSION')" \
  >/dev/null 2>&1; then
  step "OTLP backend for the otel_backend tests (.venv-otel-backend with mlflow==$MLFLOW_VERSION)"
  python3 -m venv .venv-otel-backend
  .venv-otel-backend/bin/python -m pip install --quiet --upgrade pip
  .venv-otel-backend/bin/python -m pip install --quiet "mlflow==$MLFLOW_VERSION"
fi

step "Python environment (.venv) with nbcallbacks[test]"
python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[test]"

step "front end: npm install (from the lock file), build, type-check, unit tests"
(
  cd js
  # npm install, not npm ci: with this registry's client settings npm ci rejects the lock file over other
  # platforms' optional packages; npm install installs exactly the locked versions and leaves the lock as is.
  npm install --no-audit --no-fund --loglevel=error
  npm run --silent build
  npm run --silent typecheck
  npm test --silent
)

step "ruff, mypy, import contracts, generated front-end schema"
ruff check nbcallbacks tests benchmarks scripts examples
ruff format --check nbcallbacks tests benchmarks scripts examples
mypy
lint-imports
python scripts/generate_schema.py --check

step "pytest (unit, notebooks, real browser)"
pytest "$@"
