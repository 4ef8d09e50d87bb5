"""Sotto in the customer's other tools: webhooks to intranet receivers."""
