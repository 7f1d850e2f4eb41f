"""Derived records: one module per stage output, each with its versioned schemas and the
``TOPICS`` it writes. ``pulseline.topics`` gathers every module's topics into the registry."""
