"""Behaviour data exchange: connectors to CRMs and webhooks, campaign rules, inbound hooks."""
