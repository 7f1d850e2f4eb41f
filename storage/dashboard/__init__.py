"""The built-in web dashboard, rendered on the server by the read API service.

``routes.dashboard_router`` serves the signed-in pages under ``/dashboard`` and the public
status page under ``/status/{slug}``. Pages read through ``storage.queries`` and
``storage.derived_queries`` only (no SQL here); ``views`` turns rows into what templates
show and is pure; ``session`` resolves a read key from the cookie exactly as the API
resolves a bearer key; ``assets`` serves the pinned front-end files and checks them
against ``static/vendor/vendor.json``.
"""
