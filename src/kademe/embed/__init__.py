"""Embedding: offline model loading, the OOM ladder, memory planning, and the embed stage (``stage.embed_chunks``)."""
