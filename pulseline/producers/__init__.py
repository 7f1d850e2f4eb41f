"""Clients that feed the gateway from the machines being watched."""
