"""A run asked to stop ends Cancelled, in Prefect's terms (issue 30).

The stages raise ``kademe.interrupt.Interrupted`` at their next safe point once a stop was asked
for (Ctrl-C or SIGTERM to ``kademe ingest``). ``stoppable`` wraps the function of each task and
flow: ``Interrupted`` (or a task that ended Cancelled) becomes a returned ``Cancelled`` state, so
the task or flow run ends Cancelled with a message that says how to resume, not Failed with a
traceback in the log. A task called directly in a flow then returns that state: ``completed``
turns it back into ``Interrupted`` for the flow.

A deployment's run cancelled from the UI or by ``prefect flow-run cancel``: Prefect's runner sends
SIGTERM to the flow-run process, whose engine raises ``TerminationSignal`` in the main thread and,
knowing the runner meant a cancellation, reports the run Cancelled. ``stoppable`` sees that signal
pass (or a KeyboardInterrupt) and asks the stages on the other threads (the embedding, the lexical
stage) to stop too, so the process exits at their next batch instead of after the whole embedding.
"""

from __future__ import annotations

from prefect.client.schemas.objects import State
from prefect.exceptions import CancelledRun, TerminationSignal
from prefect.states import Cancelled

from kademe import interrupt


def stoppable(fn):
    """Wrap a task's or flow's function: a stop request ends it Cancelled (see the module's docstring).

    Example:
        >>> @task
        ... @stoppable
        ... def read_year_task(year): ...   # doctest: +SKIP
    """

    def run(**kwargs):
        try:
            return fn(**kwargs)
        except (interrupt.Interrupted, CancelledRun):
            return Cancelled(message=interrupt.MESSAGE)
        except (TerminationSignal, KeyboardInterrupt):  # raised in this thread: the other threads stop too
            interrupt.request()
            raise

    # Not functools.wraps: it would copy a ``__signature__`` (``flows.parameters.takes_settings``) onto this
    # wrapper, and Prefect would pass the parameters positionally. Prefect reads the signature through
    # ``__wrapped__`` and calls the wrapper with keywords only.
    for name in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(run, name, getattr(fn, name))
    run.__wrapped__ = fn
    return run


def completed(value):
    """The value of a task called directly in a flow; ``Interrupted`` when the task ended Cancelled (``stoppable``).

    Example:
        >>> chunks = completed(chunk_texts_task(clean, year, s))  # doctest: +SKIP
    """
    if isinstance(value, State):
        if value.is_cancelled():
            raise interrupt.Interrupted()
        return value.result()
    return value
