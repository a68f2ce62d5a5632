"""Wayline operations: exception policy and triage, approvals, customer ETAs, notification
channels, outgoing webhooks, and access (tokens, roles, sessions, settings).

Pure logic and I/O adapters, independent of the coordinator's store: the coordinator feeds
exceptions to :class:`Triage`, keeps :class:`Approval` records, asks :class:`CustomerEtaRule`
before telling a customer, sends through a :class:`ChannelRouter`, publishes to a
:class:`WebhookDispatcher`, and guards its API with :func:`require`.
"""

from cloud.ops.access import (
    Principal,
    Role,
    StoredToken,
    TokenStore,
    ensure_carrier_access,
    require,
    visible_to,
)
from cloud.ops.approvals import Approval, ApprovalState
from cloud.ops.channels import (
    Channel,
    ChannelRouter,
    Delivery,
    LogChannel,
    Notification,
    PushLogStub,
    Recipient,
    SmsLogStub,
    SmtpChannel,
    WebhookChannel,
)
from cloud.ops.classifier import DEFAULT_OPTIONS, Context, Decision, Option, classify
from cloud.ops.customer_eta import (
    DEFAULT_STAGES,
    CustomerEtaRule,
    CustomerWindow,
    EtaChange,
    EtaDecision,
    EtaSettings,
    WindowStage,
)
from cloud.ops.errors import (
    AccessError,
    AlreadyDecidedError,
    ApprovalError,
    AuthenticationError,
    DeliveryError,
    ForbiddenError,
    OpsError,
    PolicyError,
    SettingsError,
    SignatureError,
    UnknownOptionError,
)
from cloud.ops.exceptions import ExceptionClass, Incident, classify_category
from cloud.ops.policy import (
    Action,
    ClassPolicy,
    PolicyDefaults,
    PolicyTable,
    default_policy,
    load_policy,
    parse_policy,
)
from cloud.ops.sessions import DashboardUser, SessionSigner, check_password, hash_password
from cloud.ops.settings import OpsSettings
from cloud.ops.triage import AutomationStats, ExceptionGroup, Triage, TriageResult
from cloud.ops.webhooks import (
    SIGNATURE_HEADER,
    WebhookDispatcher,
    WebhookEvent,
    WebhookOutcome,
    WebhookTarget,
    sign,
    verify,
)

__all__ = [
    "DEFAULT_OPTIONS",
    "DEFAULT_STAGES",
    "SIGNATURE_HEADER",
    "AccessError",
    "Action",
    "AlreadyDecidedError",
    "Approval",
    "ApprovalError",
    "ApprovalState",
    "AuthenticationError",
    "AutomationStats",
    "Channel",
    "ChannelRouter",
    "ClassPolicy",
    "Context",
    "CustomerEtaRule",
    "CustomerWindow",
    "DashboardUser",
    "Decision",
    "Delivery",
    "DeliveryError",
    "EtaChange",
    "EtaDecision",
    "EtaSettings",
    "ExceptionClass",
    "ExceptionGroup",
    "ForbiddenError",
    "Incident",
    "LogChannel",
    "Notification",
    "OpsError",
    "OpsSettings",
    "Option",
    "PolicyDefaults",
    "PolicyError",
    "PolicyTable",
    "Principal",
    "PushLogStub",
    "Recipient",
    "Role",
    "SessionSigner",
    "SettingsError",
    "SignatureError",
    "SmsLogStub",
    "SmtpChannel",
    "StoredToken",
    "TokenStore",
    "Triage",
    "TriageResult",
    "UnknownOptionError",
    "WebhookChannel",
    "WebhookDispatcher",
    "WebhookEvent",
    "WebhookOutcome",
    "WebhookTarget",
    "WindowStage",
    "check_password",
    "classify",
    "classify_category",
    "default_policy",
    "ensure_carrier_access",
    "hash_password",
    "load_policy",
    "parse_policy",
    "require",
    "sign",
    "verify",
    "visible_to",
]
