"""kademe's shapes in qdrant-client's models: a design's collection settings, a ``Where``'s ``Filter``, a batch's vectors."""

from __future__ import annotations

import numpy as np
from qdrant_client import models

from kademe.store.base import INTEGER_FIELDS, SPARSE, PointBatch, Where
from kademe.store.design import DESIGN, Design


def server_config(design: Design) -> dict:
    """``create_collection`` keyword arguments for ``design`` (beyond the vectors); empty for ``LEGACY``."""
    if design.legacy:
        return {}
    return {"hnsw_config": models.HnswConfigDiff(m=design.m, ef_construct=design.ef_construct,
                                                 full_scan_threshold=design.full_scan_threshold_kb,
                                                 payload_m=design.payload_m),
            "optimizers_config": models.OptimizersConfigDiff(default_segment_number=design.default_segment_number,
                                                             max_segment_size=design.max_segment_size_kb,
                                                             indexing_threshold=design.indexing_threshold_kb,
                                                             deleted_threshold=design.deleted_threshold,
                                                             vacuum_min_vector_number=design.vacuum_min_vector_number)}


def server_quantization(design: Design) -> models.ScalarQuantization | models.BinaryQuantization | None:
    """The quantized copy kept in RAM (``always_ram``), the originals staying on disk."""
    if design.quantization == "int8":
        return models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
            type=models.ScalarType.INT8, quantile=0.99, always_ram=True))
    if design.quantization == "binary":
        return models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True))
    return None


def server_schema(name: str, design: Design):
    """The payload index of ``name``: ``year`` principal, ``corpus`` tenant, the rest on disk."""
    if design.legacy:
        return models.PayloadSchemaType.INTEGER if name in INTEGER_FIELDS else models.PayloadSchemaType.KEYWORD
    if name in INTEGER_FIELDS:
        return models.IntegerIndexParams(type=models.IntegerIndexType.INTEGER, lookup=True, range=True,
                                         is_principal=True, on_disk=True)
    if name == "corpus":
        return models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
    return models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, on_disk=True)


def search_params(design: Design = DESIGN) -> models.SearchParams:
    """Query-time parameters: ``hnsw_ef``, and rescoring on the originals (ignored where nothing is quantized)."""
    return models.SearchParams(hnsw_ef=design.hnsw_ef, quantization=models.QuantizationSearchParams(
        rescore=True, oversampling=design.oversampling))


def server_filter(where: Where | None) -> models.Filter | None:
    """The qdrant-client ``Filter`` for ``where`` (None when it matches everything).

    Example:
        >>> server_filter(Where(corpus="yargitay", any_of={"esas_no": ["2022/14549"]}))
    """
    if where is None:
        return None
    pairs, should, has_vector = where.clauses()
    must: list = [models.FieldCondition(key=key, match=models.MatchAny(any=value) if isinstance(value, list)
                                        else models.MatchValue(value=value)) for key, value in pairs]
    if should:
        must.append(models.Filter(should=[models.FieldCondition(key=key, match=models.MatchAny(any=values))
                                          for key, values in should.items()]))
    if has_vector:
        must.append(models.HasVectorCondition(has_vector=has_vector))
    return models.Filter(must=must) if must else None


def sparse_vector(pair: tuple[np.ndarray, np.ndarray]) -> models.SparseVector:
    indices, values = pair
    return models.SparseVector(indices=np.asarray(indices).tolist(), values=np.asarray(values, dtype=np.float32).tolist())


def point_vectors(batch: PointBatch) -> list[dict]:
    """Each point's named vectors: one ``tolist()`` of the whole matrix (C speed), bm25 beside it."""
    rows = np.asarray(batch.vectors, dtype=np.float32).tolist()
    if batch.sparse is None:
        return [{batch.space: row} for row in rows]
    return [{batch.space: row, SPARSE: sparse_vector(sp)} for row, sp in zip(rows, batch.sparse)]
