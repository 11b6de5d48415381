"""Clear errors for misspelt config keys."""
import difflib
import functools
import inspect
from typing import Callable, Iterable, List, Tuple

__all__ = ['accepted_arguments', 'check_arguments', 'checked_init']


def _unknown_message(owner: str, unknown: Iterable[str],
                     valid: Iterable[str]) -> str:
    """``owner`` got ``unknown`` arguments: suggest the closest valid ones.

    Args:
        owner (str): What was configured, e.g. ``'ResNetSplitter'``.
        unknown (Iterable[str]): The keys that are not accepted.
        valid (Iterable[str]): The keys that are.
    """
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f' (did you mean `{close[0]}`?)' if close else ''
        parts.append(f'`{key}`{hint}')
    return (f'{owner} got unknown argument(s) {", ".join(parts)}; valid '
            f'arguments: {", ".join(valid)}')


def _keywords(function: Callable) -> Tuple[List[str], bool]:
    """Keyword names ``function`` takes, and whether it takes ``**kw``."""
    params = inspect.signature(function).parameters.values()
    names = [
        p.name for p in params if p.name != 'self' and p.kind in (
            p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _accepted(function: Callable) -> List[str]:
    """Keyword names ``function`` accepts, or [] when it takes ``**kw``."""
    names, open_kwargs = _keywords(function)
    return [] if open_kwargs else names


def accepted_arguments(cls: type) -> List[str]:
    """Keyword names ``cls(...)`` accepts, following ``**kwargs`` upwards.

    Args:
        cls (type): The class.


    An ``__init__`` that takes ``**kwargs`` hands them to its parent's
    (``super().__init__(**kwargs)``, the OpenMMLab pattern), so the names
    are collected along the MRO until an ``__init__`` without ``**kwargs``.
    Returns [] when none is found (nothing can be checked).
    """
    collected: List[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass is object or not inspect.isfunction(inspect.unwrap(init)):
            return []
        names, open_kwargs = _keywords(inspect.unwrap(init))
        collected += names
        if not open_kwargs:
            return collected
    return []


def check_arguments(owner: str, function: Callable,
                    kwargs: Iterable[str]) -> None:
    """Raise TypeError naming the closest valid key for every unknown one.

    Args:
        owner (str): Name used in the message.
        function (Callable): What the keyword arguments are meant for (a
            class: its constructor, along the ``**kwargs`` chain).
        kwargs (Iterable[str]): The keys to be passed.
    """
    valid = sorted(set(
        accepted_arguments(function) if isinstance(function, type) else
        _accepted(function)))
    unknown = [k for k in kwargs if valid and k not in valid]
    if unknown:
        raise TypeError(_unknown_message(owner, unknown, valid))


def checked_init(cls: type) -> type:
    """Make ``cls(**cfg)`` name the closest valid key of a misspelt one.

    Gives ``cls`` an ``__init__`` that checks the keys, then runs its own
    or the inherited one (signature kept, so ``inspect.signature(cls)`` is
    unchanged). Keys are checked against the whole ``**kwargs`` chain
    (:func:`accepted_arguments`); a class whose chain ends in an open
    ``**kwargs`` is left alone.
    """
    init = cls.__init__  # its own or the inherited one
    if hasattr(cls.__dict__.get('__init__'), '__wrapped__'):
        return cls
    valid = sorted(set(accepted_arguments(cls)))
    if not valid:
        return cls

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        unknown = [k for k in kwargs if k not in valid]
        if unknown:
            raise TypeError(_unknown_message(cls.__name__, unknown, valid))
        init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls
