"""Compare two runs side by side: ``nbcallbacks.compare(a, b)`` (exported lazily by the package).

Each side is one of:

- a ``NotebookHandler``: its last root run (the most recently started run without a known parent);
- ``(handler, run_id)`` or ``(runs_dataframe, run_id)``: that run and its descendants (a unique prefix of the id
  is enough);
- a runs DataFrame (``h.runs_dataframe()`` or a slice of it): every run in it.

Runs are aligned by their *path* in the tree, level by level: the children (in start order) of two paired runs
are aligned by name with a longest-common-subsequence alignment (common prefix and suffix first, then an exact
LCS, or ``difflib.SequenceMatcher`` for very long sibling lists), then the children of each pair, and so on. An
extra tool call or a retried step is a row present on one side only (``only_in``), and everything after it still
pairs up, even among repeated names; inside a block of different names, runs of the same type pair (a model
swapped for another). When each side is a single run, the two roots pair whatever their names. Rows come in
depth-first order; ``path`` names a run from the root down, with its rank among same-named siblings
(``LangGraph/agent#2/DemoChatModel`` is the model call of the second ``agent`` step).

The result is a ``pandas.DataFrame`` (a :class:`Comparison`) with one row per aligned pair; displayed in a
notebook it renders as a static side-by-side view: the two trees row by row, differences marked, paired waterfall
bars on one time scale, and per pair a ``<details>`` with both inputs and outputs and a word diff of the outputs.
The view is plain HTML and CSS (no script), with every text escaped.

One job a module: ``sides`` resolves what each side is, ``alignment`` pairs runs by tree path, ``values`` reads a
run's numbers and output text, ``result`` builds the frame, ``view`` renders it.
"""

from __future__ import annotations

from nbcallbacks.comparison.result import COMPARE_COLUMNS, Comparison, compare
from nbcallbacks.comparison.values import output_text  # noqa: F401 - public, importable from here as before

__all__ = ["COMPARE_COLUMNS", "Comparison", "compare"]
