"""The lexical side: the BM25 analyzer (``bm25``) and the stage that writes a sparse vector per chunk (``stage``)."""
