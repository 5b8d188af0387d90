"""Feedback on answers: the request index joining ``request_id`` to policy, route, model and arm."""

from modelroute.feedback.store import Feedback, FeedbackError, RequestIndex, Served, ServedLabels, parse_feedback

__all__ = ["Feedback", "FeedbackError", "RequestIndex", "Served", "ServedLabels", "parse_feedback"]
