"""Adapters that put a kode store under the agent frameworks people already use.

Each adapter is a module of its own with an optional extra, imported by name so
that a missing framework costs nothing until it is used:

- :mod:`kode_sdk.integrations.langgraph`: ``KodeSaver``, a LangGraph checkpoint
  saver (``pip install 'kode-sdk[langgraph]'``);
- :mod:`kode_sdk.integrations.openai_agents`: ``KodeSession``, an OpenAI
  Agents SDK session (``pip install 'kode-sdk[openai-agents]'``);
- :mod:`kode_sdk.integrations.adk`: ``KodeSessionService``, a Google ADK
  session service (``pip install 'kode-sdk[adk]'``).
"""

from __future__ import annotations

__all__: list[str] = []
