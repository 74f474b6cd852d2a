"""Case numbers as lawyers write them (``2022/14549 E., 2023/4695 K.``) in one canonical form, ``YYYY/N``.

The clean stage stores ``esas_no``/``karar_no`` in this form and search parses queries into it, so a
case number is found by an exact match on the keyword payload indexes.
"""

from __future__ import annotations

import re

_NUMBER = r"(?<![\d/])((?:19|20)\d{2})\s*/\s*0*(\d{1,7})(?![\d/])"
_CASE = re.compile(_NUMBER)
_BEFORE = re.compile(r"(esas|karar|\b[ek]\.?)\s*(?:no|numaras[ıi]|say[ıi]s[ıi])?\s*[.:]?\s*$", re.IGNORECASE)
_AFTER = re.compile(r"^\s*(esas|karar|[ek](?:\.|\b))", re.IGNORECASE)


def normalize_case_number(text: str) -> str | None:
    """The canonical ``YYYY/N`` form of the first case number in ``text`` (None when there is none).

    Spaces around the slash, leading zeros and labels (``E.``, ``Esas``, ``K.``, ``Karar``) go away;
    the clean stage can store ``esas_no``/``karar_no`` in this form and search matches it exactly.

    Example:
        >>> normalize_case_number(" 2022 / 014549 E. "), normalize_case_number("Karar No: 2023/4695")
        ('2022/14549', '2023/4695')
        >>> normalize_case_number("5237 sayılı TCK") is None
        True
    """
    m = _CASE.search(text or "")
    return f"{m.group(1)}/{int(m.group(2))}" if m else None


def parse_case_numbers(query: str) -> dict[str, list[str]]:
    """Esas and karar numbers written in ``query``, canonical; an unlabeled number goes to both lists.

    A label is ``E.``/``Esas`` or ``K.``/``Karar`` right after the numbers (``2022/14549 E.``) or right
    before them (``Esas No: 2022/14549``, ``E. 2022/14549``), on the same side throughout a query.

    Example:
        >>> parse_case_numbers("Yargıtay 4. HD 2022/14549 E. , 2023 / 4695 K.")
        {'esas': ['2022/14549'], 'karar': ['2023/4695']}
        >>> parse_case_numbers("2019/17697 sayılı karar")
        {'esas': ['2019/17697'], 'karar': ['2019/17697']}
    """
    found: dict[str, list[str]] = {"esas": [], "karar": []}
    matches = list(_CASE.finditer(query))
    # Labels sit on one side of the numbers throughout a query: before ("E. 2022/1 K. 2023/2") when
    # the first number has one before it, else after ("2022/1 E., 2023/2 K.").
    prefix = bool(matches) and _BEFORE.search(query[max(0, matches[0].start() - 24):matches[0].start()]) is not None
    for m in matches:
        number = f"{m.group(1)}/{int(m.group(2))}"
        if prefix:
            label = _BEFORE.search(query[max(0, m.start() - 24):m.start()])
        else:
            label = _AFTER.match(query[m.end():m.end() + 12])
        kind = label.group(1).lower()[0] if label else ""
        kinds = ["esas"] if kind == "e" else ["karar"] if kind == "k" else ["esas", "karar"]
        for k in kinds:
            if number not in found[k]:
                found[k].append(number)
    return found
