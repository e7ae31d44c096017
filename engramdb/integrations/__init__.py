"""Adapters for agent frameworks; each module imports its framework only when used.

- ``langchain``: ``EngramRetriever`` (BaseRetriever) and ``EngramChatMessageHistory``.
"""
