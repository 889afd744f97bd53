"""The audit trail: every access decision and action, appended in the action's transaction."""

from hub.audit.events import SYSTEM, Actor, AuditEvent, append_event

__all__ = ["SYSTEM", "Actor", "AuditEvent", "append_event"]
