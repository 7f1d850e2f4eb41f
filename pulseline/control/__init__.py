"""The control plane: projects, API keys, monitors, alert channels and rules.

Entities live in one compacted Kafka topic (``control.entities``), keyed ``<type>:<id>``;
a delete is a tombstone. Every service materialises the topic into a ``ControlView``
(``view.py``, pure) through a ``ControlStore`` (``store.py``, the Kafka shell). Changes go
through ``ControlService`` (``service.py``), shared by the admin API and the CLI.
"""
