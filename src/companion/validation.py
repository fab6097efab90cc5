"""One way to check a config where it is built: field rules and :func:`check`.

Every config dataclass of the library calls :func:`check` in its ``__post_init__`` with one rule per
field, so a wrong value fails at construction (not after the compute) with one message that names the
class, the field, the value and what is allowed::

    FitConfig.lr must be in (0, inf), got nan
    psol.PSOLConfig.seeds must be distinct integers in [0, 2147483647], at least one, got (0, 0)

A wrong type raises :class:`TypeError` (``True`` is not an integer), a wrong value :class:`ValueError`.
Rules that relate two fields (steps xor epochs, fractions that sum to one) use :func:`invalid`, which
words its message the same way.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from typing import Any, Callable

import numpy as np

#: An experiment's seeds: the runs derive more seeds from them (``seed * 7919 + shot``, ``seed + stage``, ...)
#: that must still be valid training seeds below.
MAX_SEED = 2**31 - 1
#: A training seed (:class:`~companion.train.FitConfig`, :class:`~companion.ssl.PretrainConfig`): ``fit``
#: seeds its data order with ``seed * 1_000_003 + epoch``, which must fit torch's 64-bit seed.
MAX_TRAIN_SEED = 2**44 - 1


class Rule:
    """A check of one value: ``test(value)`` returns ``None`` when the value is allowed, else
    ``(error class, what is allowed)``, the second worded to follow "must", e.g. ``"be >= 1"``."""

    def __init__(self, test: Callable[[Any], tuple[type[Exception], str] | None], allowed: str):
        self.test, self.allowed = test, allowed

    def __call__(self, value):
        return self.test(value)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def integer(low: int | None = None, high: int | None = None) -> Rule:
    """An integer (not a bool) in ``[low, high]``."""

    def test(v):
        if not _is_int(v):
            return TypeError, "be an integer"
        if low is not None and v < low:
            return ValueError, f"be >= {low}"
        if high is not None and v > high:
            return ValueError, f"be <= {high}"
        return None

    bounds = f" in [{low}, {high}]" if None not in (low, high) else f" >= {low}" if low is not None else (
        f" <= {high}" if high is not None else "")
    return Rule(test, "be an integer" + bounds)


def _span(low, high, low_open, high_open) -> str:
    return f"{'(' if low_open else '['}{low}, {high}{')' if high_open or high == math.inf else ']'}"


def number(low: float = -math.inf, high: float = math.inf, low_open: bool = False, high_open: bool = False) -> Rule:
    """A finite real number (not a bool) in the interval; NaN and infinities are always refused."""
    span = _span(low, high, low_open, high_open)

    def test(v):
        if not _is_real(v):
            return TypeError, "be a number"
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        if not (math.isfinite(v) and above and below):
            return ValueError, f"be in {span}"
        return None

    return Rule(test, f"be a finite number in {span}")


def flag() -> Rule:
    """True or False (``np.bool_`` too), nothing else: ``1`` and ``"yes"`` are refused."""
    return Rule(lambda v: None if isinstance(v, (bool, np.bool_)) else (TypeError, "be True or False"),
                "be True or False")


def text() -> Rule:
    """A non-empty string."""

    def test(v):
        if not isinstance(v, str):
            return TypeError, "be a string"
        return None if v else (ValueError, "be a non-empty string")

    return Rule(test, "be a non-empty string")


def _quoted(choices) -> str:
    items = [repr(c) for c in choices]
    if len(items) == 1:
        return items[0]
    listed = f"{', '.join(items[:-1])} or {items[-1]}"
    return listed if len(items) == 2 else f"one of {listed}"


def one_of(*choices) -> Rule:
    """One of ``choices`` (names of data sets, methods, modes, ...)."""
    names = all(isinstance(c, str) for c in choices)
    ints = all(_is_int(c) for c in choices)
    allowed = f"be {_quoted(choices)}"

    def test(v):
        if (names and not isinstance(v, str)) or (ints and not _is_int(v)):  # 1.0 is not the choice 1
            return TypeError, allowed
        try:
            known = v in choices
        except TypeError:
            known = False
        return None if known else (ValueError, allowed)

    return Rule(test, allowed)


def optional(rule: Rule) -> Rule:
    """``None`` or what ``rule`` allows."""

    def test(v):
        if v is None:
            return None
        bad = rule(v)
        if bad is not None and bad[0] is TypeError:
            return TypeError, f"{bad[1]} or None"
        return bad

    return Rule(test, f"{rule.allowed} or None")


def sequence(item: Rule | None = None, *, non_empty: bool = True, distinct: bool = False,
             length: int | None = None, allowed: str | None = None) -> Rule:
    """A tuple or list (not a string) whose items each pass ``item``; ``non_empty``, ``distinct`` (no
    repeats) and an exact ``length`` are checked too. ``allowed`` rewords the whole message."""
    words = [w for w in ("non-empty" if non_empty and length is None else "", "distinct" if distinct else "") if w]
    head = f"a tuple of {length}" if length is not None else " ".join(["a", *words, "tuple"])
    short = allowed or f"be {head}"
    describe = allowed or (f"be {head}" + (f" whose items must each {item.allowed}" if item else ""))

    def test(v):
        if not isinstance(v, (tuple, list)):
            return TypeError, describe
        if (non_empty and not v) or (length is not None and len(v) != length):
            return ValueError, describe
        if item is not None:
            for x in v:
                bad = item(x)
                if bad is not None:
                    return bad[0], f"{short} (the item {x!r} must {bad[1]})"
        if distinct:
            try:
                repeated = [x for i, x in enumerate(v) if x in v[:i]]
            except TypeError:
                return TypeError, describe
            if repeated:
                return ValueError, f"{short} ({repeated[0]!r} is repeated)"
        return None

    return Rule(test, describe)


def pair(item: Rule, ordered: bool = True) -> Rule:
    """Two values ``(lo, hi)``, each passing ``item``, with ``lo <= hi`` when ``ordered``."""
    short = f"be a pair (lo, hi){' with lo <= hi' if ordered else ''}"
    describe = f"{short}, each must {item.allowed}"
    two = sequence(item, length=2, allowed=short)

    def test(v):
        bad = two(v)
        if bad is not None and bad[1] == short:
            return bad[0], describe
        if bad is None and ordered and not v[0] <= v[1]:
            return ValueError, describe
        return bad

    return Rule(test, describe)


def mapping(key: Rule | None = None, value: Rule | None = None) -> Rule:
    """A dict whose keys and values pass ``key`` and ``value``."""
    describe = "be a dict" + (f" whose keys must each {key.allowed}" if key else "") + (
        f"{' and' if key else ''} whose values must each {value.allowed}" if value else "")

    def test(v):
        if not isinstance(v, dict):
            return TypeError, describe
        for k, x in v.items():
            if key and (bad := key(k)) is not None:
                return bad[0], f"be a dict (the key {k!r} must {bad[1]})"
            if value and (bad := value(x)) is not None:
                return bad[0], f"be a dict (the value of {k!r} must {bad[1]})"
        return None

    return Rule(test, describe)


def instance(*classes: type) -> Rule:
    """An instance of one of ``classes`` (a nested config, say)."""
    names = " or ".join(c.__name__ for c in classes)
    allowed = f"be a {names}"
    return Rule(lambda v: None if isinstance(v, classes) else (TypeError, allowed), allowed)


def path() -> Rule:
    """A folder or file name: a non-empty ``str`` or an ``os.PathLike``."""

    def test(v):
        if not isinstance(v, (str, os.PathLike)):
            return TypeError, "be a path"
        return None if str(v) else (ValueError, "be a non-empty path")

    return Rule(test, "be a path")


def device() -> Rule:
    """A torch device name such as ``"cpu"`` or ``"cuda:0"``."""
    allowed = "name a torch device such as 'cpu' or 'cuda:0'"

    def test(v):
        if not isinstance(v, str):
            return TypeError, allowed
        import torch

        try:
            torch.device(v)
        except (RuntimeError, TypeError, ValueError):
            return ValueError, allowed
        return None

    return Rule(test, allowed)


def torchvision_model() -> Rule:
    """The name of a torchvision classification model builder (``"resnet50"``, ``"vgg16"``, ...)."""
    allowed = "name a torchvision model such as 'resnet18' or 'resnet50'"

    def test(v):
        if not isinstance(v, str):
            return TypeError, allowed
        from torchvision import models

        return None if v in models.list_models(module=models) else (ValueError, allowed)

    return Rule(test, allowed)


def satisfies(checker: Callable[[Any], Any], allowed: str) -> Rule:
    """What an existing checker function accepts: its TypeError/ValueError message says why not."""

    def test(v):
        try:
            checker(v)
        except (TypeError, ValueError) as e:
            return type(e), f"{allowed}: {e}"
        return None

    return Rule(test, allowed)


def all_of(*rules: Rule) -> Rule:
    """Every rule in turn (the first that fails speaks)."""

    def test(v):
        for r in rules:
            bad = r(v)
            if bad is not None:
                return bad
        return None

    return Rule(test, ", and ".join(r.allowed for r in rules))


# The rules most configs share.
positive_int = integer(1)
non_negative_int = integer(0)
positive = number(0, low_open=True)
non_negative = number(0)
fraction = number(0, 1)  # a probability or a share, 0 and 1 included
seed = integer(0, MAX_SEED)
train_seed = integer(0, MAX_TRAIN_SEED)
#: A tuple of seeds: at least one, none repeated (a repeat would count one sample twice in an interval).
seeds = sequence(seed, distinct=True, allowed=f"be distinct integers in [0, {MAX_SEED}], at least one")
#: Seeds of an optional part: () skips it.
seeds_or_empty = sequence(seed, non_empty=False, distinct=True,
                          allowed=f"be distinct integers in [0, {MAX_SEED}], or empty")
threads = optional(positive_int)


def check(obj, **rules: Rule) -> None:
    """Check every field of the dataclass ``obj`` with its rule; raise the first failure as
    ``TypeError``/``ValueError`` naming ``Class.field``, the value and what is allowed.

    Every field needs a rule: a field added to a config without one fails at once, so no field goes
    unchecked. Inside a paper package the class is named with it (``nrs.Config``: several have a ``Config``).
    """
    cls = _label(obj)
    names = [f.name for f in dataclasses.fields(obj)]
    missing = [n for n in names if n not in rules]
    unknown = [n for n in rules if n not in names]
    if missing or unknown:
        raise AssertionError(f"{cls}: no rule for fields {missing}; rules for unknown fields {unknown}")
    for name in names:
        value = getattr(obj, name)
        bad = rules[name](value)
        if bad is not None:
            kind, allowed = bad
            raise kind(f"{cls}.{name} must {allowed}, got {value!r}")


def invalid(obj, field: str, allowed: str, kind: type[Exception] = ValueError, value: Any = dataclasses.MISSING):
    """Raise the message :func:`check` raises, for a rule that relates fields (``allowed`` follows
    "must" and names the other field)."""
    value = getattr(obj, field) if value is dataclasses.MISSING else value
    raise kind(f"{_label(obj)}.{field} must {allowed}, got {value!r}")


def _label(obj) -> str:
    """``FitConfig`` for the core, ``nrs.Config`` inside a package (several packages have a ``Config``)."""
    parts = type(obj).__module__.split(".")
    return f"{parts[1]}.{type(obj).__name__}" if len(parts) > 2 and parts[0] == "companion" else type(obj).__name__
