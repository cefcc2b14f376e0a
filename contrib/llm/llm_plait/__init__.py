"""llm-plait: the bridge between plait and Simon Willison's ``llm``.

Two plugins, each loaded by its host and each importing the other side only when used:

- ``llm_plait.provider``: the plait provider ``llm``, so ``plait.Agent("llm:<model id>")``
  runs on any model llm knows;
- ``llm_plait.commands``: the llm command ``llm plait run MODULE:OBJECT``.

This package imports neither plait nor llm, so loading one plugin never loads the other
framework.
"""
