"""The built-in web dashboard, rendered on the server by the read API service.

``routes.dashboard_router`` serves the signed-in pages under ``/dashboard`` and the public
status page under ``/status/{slug}``; ``analytics_routes`` adds the web analytics and
performance screens, whose parts (``analytics_tiles``) load one by one with htmx. Pages
read through ``storage.queries``, ``storage.derived_queries`` and
``storage.analytics_queries`` only (``data``, ``analytics_data``; no SQL here). Pure
modules turn rows into what templates show: ``views`` (monitors, incidents, issues),
``period`` and ``selection`` (the window and the URL state), ``traffic`` (metrics,
comparisons, chart), ``visits`` (figures folded from session rows) and ``vitals``
(ratings). ``session`` resolves a read key from the cookie exactly as the API resolves a
bearer key; ``assets`` serves the pinned front-end files and checks them against
``static/vendor/vendor.json``.
"""
