"""The flows' parameters are the settings: ``Settings`` is their one declaration.

Prefect reads a flow's parameters from its signature: the deployment's parameter schema
(``prefect deploy``, ``flow.deploy``), the UI's run form, validation of a run's parameters. A flow
that takes the settings as ``**settings`` is therefore given a real signature by
``takes_settings`` before ``@flow`` wraps it: one keyword parameter per ``Settings`` field, default
None (then ``KADEME_*`` or the field's default applies), described by the field's own description.
Adding a field to ``Settings`` adds it to every flow that takes the settings.

The API key is never a parameter (run parameters are stored in the clear): a flow reads it from
``KADEME_QDRANT_API_KEY`` or from the Secret block named by ``qdrant_api_key_block``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from pydantic import Field

from kademe.models import fetch_models
from kademe.settings import Settings

F = TypeVar("F", bound=Callable)

SECRETS = ("qdrant_api_key",)
SETTINGS_PARAMETERS = tuple(name for name in Settings.model_fields if name not in SECRETS)


def takes_settings(exclude: Iterable[str] = ()) -> Callable[[F], F]:
    """Give a flow function with ``**settings`` the ``Settings`` fields as keyword parameters.

    The function's own required parameters come first, then one parameter per settings field
    (in ``Settings``' order, less ``exclude``), then its own parameters with defaults.

    Args:
        exclude: settings fields the flow does not read (left out of its parameters).

    Returns:
        A decorator that sets the function's ``__signature__`` and returns the function itself.

    Example:
        >>> @takes_settings(exclude=("source",))
        ... def f(year: int, **settings): ...
        >>> list(inspect.signature(f).parameters)[:3]
        ['year', 'corpus', 'collection']
    """
    names = [name for name in SETTINGS_PARAMETERS if name not in set(exclude)]

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        own = list(signature.parameters.values())
        if not own or own[-1].kind is not inspect.Parameter.VAR_KEYWORD:
            raise TypeError(f"{fn.__name__} must take the settings as **settings")
        required = [p for p in own[:-1] if p.default is inspect.Parameter.empty]
        optional = [p for p in own[:-1] if p.default is not inspect.Parameter.empty]
        fields = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=_parameter_type(name),
                                    default=Field(None, description=Settings.model_fields[name].description))
                  for name in names]
        fn.__signature__ = signature.replace(parameters=[*required, *fields, *optional])  # type: ignore[attr-defined]
        return fn

    return decorate


def _parameter_type(name: str):
    """The field's type, optional; a path travels as a string (run parameters are JSON)."""
    annotation = Settings.model_fields[name].annotation
    return (str if annotation is Path else annotation) | None


def parameters_of(flow, s: Settings) -> dict:
    """``s`` as the keyword parameters ``flow`` declares: JSON-safe, secrets left out.

    Example:
        >>> from flows.upgrade import upgrade_years
        >>> "source" in parameters_of(upgrade_years, Settings(source="data/y_{year}.ndjson"))
        False
    """
    declared = inspect.signature(flow).parameters
    return {name: value for name, value in s.flow_parameters().items() if name in declared}


def settings_from(params: dict) -> Settings:
    """Flow parameters -> Settings; a None parameter falls back to KADEME_* or the default; the models fetched."""
    s = Settings(**{k: v for k, v in params.items() if v is not None})
    fetch_models(s)  # a deployment's run downloads a Hub model here, once; cached (the CLI fetched it): no request (issue 30)
    if s.qdrant_api_key_block and not s.qdrant_api_key:
        from prefect.blocks.system import Secret

        s = s.model_copy(update={"qdrant_api_key": Secret.load(s.qdrant_api_key_block).get()})
    return s
