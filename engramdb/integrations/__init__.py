"""Adapters for agent frameworks; each module imports its framework only when it is imported.

- ``langchain``: ``EngramRetriever`` (BaseRetriever, hybrid recall), ``EngramChatMessageHistory``
  and ``EngramVectorStore`` (VectorStore, cosine similarity).
- ``langgraph``: ``EngramStore`` (BaseStore).
- ``llamaindex``: ``EngramMemoryBlock`` and ``EngramRetriever``.
"""
