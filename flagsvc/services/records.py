"""The stored records the services hand to the HTTP faces.

The API and the UI read and type these (an audit event to describe, a cohort to present)
but never query or write them: every query and write goes through a service. Importing
them from here keeps the faces independent of the storage package.
"""

from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import CohortMember
from flagsvc.storage.models import Flag
from flagsvc.storage.models import Objective
from flagsvc.storage.models import Webhook
from flagsvc.storage.models import WebhookDelivery

__all__ = [
    "AuditEvent",
    "Cohort",
    "CohortMember",
    "Flag",
    "Objective",
    "Webhook",
    "WebhookDelivery",
]
