"""What the kit's fast and guarding paths read of other libraries' internals.

``fastapi_app.sockets.direct_frames`` and ``fastapi_app.guards.slow_clients`` hook or
read attributes of uvicorn, websockets and python-engineio that are not public API; each
checks at start-up, with :func:`attribute_names`, that the installed versions still have
them, and steps aside with one warning when they do not.
"""

from __future__ import annotations


def attribute_names(cls: type) -> set[str]:
    """Attribute names a class has or its code uses (instance attributes are set in
    methods, so they show up only in the methods' code)."""
    names = set(dir(cls))
    for klass in cls.__mro__:
        for value in vars(klass).values():
            func = getattr(value, "fget", None) or getattr(value, "__func__", value)
            code = getattr(func, "__code__", None)
            if code is not None:
                names.update(code.co_names)
    return names
