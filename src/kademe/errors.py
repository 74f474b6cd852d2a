"""The one exception users see: a message that says what to do next."""


class KademeError(Exception):
    """A user-facing error. The CLI prints its text alone (no traceback) and exits 1.

    Example:
        raise KademeError("Source file 'data/y_2011.ndjson' does not exist.\\n\\nCheck --source.")
    """
