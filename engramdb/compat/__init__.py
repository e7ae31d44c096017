"""Drop-in replacements for other memory libraries' APIs (``compat.mem0``)."""
