"""closeloop's domain: the Grievance aggregate, its policies and the application service.

Imports the standard library and eventsourcing only (enforced by import-linter).
"""
