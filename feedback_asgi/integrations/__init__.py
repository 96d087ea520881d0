"""Framework adapters: thin layers over :mod:`feedback_asgi.web.endpoint` and the kit.

Each submodule imports its framework and fails with an ``ImportError`` naming the extra to
install; importing this package imports no framework.

* :mod:`feedback_asgi.integrations.starlette`: ``feedback_routes(kit=None)``
* :mod:`feedback_asgi.integrations.fastapi`: ``feedback_router(kit=None)``,
  ``get_feedback_context``
"""
