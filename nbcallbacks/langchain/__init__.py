"""The LangChain boundary: the only package (besides ``nbcallbacks.demo``) that imports ``langchain_core``.

- ``decode``: LangChain's arguments (usage, content blocks, names, errors) turned into plain values;
- ``callbacks``: ``CallbackIntake``, the ``on_*`` methods, each of which only decodes and delegates to the
  recorder;
- ``context``: ``trace()``, ``metric()`` and ``ametric()``.
"""
