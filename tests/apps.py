"""Small framework apps that the tests drive over WSGI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import webtest
from pyramid.config import Configurator  # imported here, before any test starts a thread


def pyramid_app(
    view: Callable[[Any], Any],
    *,
    factory: Any = None,
    settings: dict[str, Any] | None = None,
    include: str | None = None,
) -> webtest.TestApp:
    """A Pyramid app serving ``view`` at ``/``.

    The session comes from ``factory``, or from ``include`` reading ``settings``.
    """
    config = Configurator(settings=settings or {})
    if factory is not None:
        config.set_session_factory(factory)
    if include is not None:
        config.include(include)
    config.add_route("view", "/")
    config.add_view(view, route_name="view")
    return webtest.TestApp(config.make_wsgi_app())
