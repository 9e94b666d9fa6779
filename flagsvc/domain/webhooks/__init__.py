"""Webhook rules without I/O: which audit events notify, how a body is signed, when a
failed delivery is tried again, which addresses are refused, and the Slack text."""
