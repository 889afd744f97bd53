"""The audit trail: every access decision and action, appended in the action's transaction."""

from hub.audit.events import AuditEvent, append_event

__all__ = ["AuditEvent", "append_event"]
