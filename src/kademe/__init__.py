"""kademe: a resumable yearly ingest of court decisions into Qdrant, with an OOM-proof embedding ladder."""

__version__ = "0.1.0"
