"""Embedding: the encoder (``model``), the card it runs on (``card``), the OOM ladder, memory planning, the query encoder and the embed stage (``stage.embed_chunks``)."""
