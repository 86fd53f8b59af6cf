"""Chatwoot (https://github.com/chatwoot/chatwoot): its webhooks in, its REST API out.

Every rule is documented in docs/integrations/chatwoot.md.
"""

from connectors.chatwoot.echo import Action, OutboundCall, find_echo
from connectors.chatwoot.inbound import (
    Ignored,
    Translated,
    conversation_key,
    translate_webhook,
)
from connectors.chatwoot.outbound import (
    ApiCall,
    NoCall,
    NotAChatwootId,
    OutboundOptions,
    api_calls_for,
    conversation_of_inbound,
)
from connectors.chatwoot.payload import PayloadError
from connectors.chatwoot.rules import (
    DEFAULT_RULES,
    CloseReasonRule,
    CloseReasonSource,
    TranslationRules,
)
from connectors.chatwoot.signature import SignatureError, sign, verify_signature

__all__ = [
    "DEFAULT_RULES",
    "Action",
    "ApiCall",
    "CloseReasonRule",
    "CloseReasonSource",
    "Ignored",
    "NoCall",
    "NotAChatwootId",
    "OutboundCall",
    "OutboundOptions",
    "PayloadError",
    "SignatureError",
    "Translated",
    "TranslationRules",
    "api_calls_for",
    "conversation_key",
    "conversation_of_inbound",
    "find_echo",
    "sign",
    "translate_webhook",
    "verify_signature",
]
