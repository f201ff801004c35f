"""The clear error when the OpenTelemetry SDK is missing."""

from __future__ import annotations

import importlib.util

INSTALL_HINT = 'pip install "nbcallbacks[otel]"'


def require_sdk() -> None:
    """Raise an ``ImportError`` naming the extra when ``opentelemetry-sdk`` is not installed."""
    try:
        found = importlib.util.find_spec("opentelemetry.sdk.trace") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        msg = f"nbcallbacks' OpenTelemetry support needs the OpenTelemetry SDK: {INSTALL_HINT}"
        raise ImportError(msg, name="opentelemetry.sdk")
