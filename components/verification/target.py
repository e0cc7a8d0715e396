"""What a verification checks: the deployed stage as LobeChat and the operator's machine see it.

A `VerificationTarget` is built either inside ``pulumi up`` from the stage's config and the
resources' outputs (`components.verification.during_up`), or by the standalone command from
``pulumi stack output --json --show-secrets`` (`from_stack_outputs`), whose ``verificationTarget``
output carries what the other outputs do not (where this machine reaches Logto and LobeChat, the M2M
credential, the application and hook ids, the stage network).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

VERIFICATION_OUTPUT = "verificationTarget"
"""The (secret) stack output the standalone command reads."""


class TargetError(ValueError):
    """The stack outputs (or flags) do not say enough to verify the stage; the message says what is missing."""


@dataclass(frozen=True)
class ManagementAccess:
    """The M2M credential that reads the application and sends the webhook test (secret left out of repr)."""

    endpoint: str
    client_id: str
    client_secret: str = field(repr=False)
    resource: str = "https://default.logto.app/api"


@dataclass(frozen=True)
class VerificationTarget:
    """A deployed stage.

    Attributes:
        stage: the stack name.
        generation: LobeChat generation (1 or 2).
        app_url: the public LobeChat URL (``lobechatUrl``; what ``APP_URL`` must be).
        logto_url: where this machine reaches Logto (``logto.apiEndpoint``).
        lobechat_url: where this machine reaches LobeChat (``verification.lobechatCheckUrl``).
        environment: LobeChat's environment as the container got it (secret values; never printed).
        management: the M2M credential, or None (then the checks that need it are skipped).
        application_id / webhook_id: the Logto objects the stack manages (None: look up / skip).
        network: the stage's Docker network (the in-network probe runs there).
        lobechat_image: the LobeChat image (its node runs the in-network probe).
        proxied_host_names: ``/etc/hosts`` entries the LobeChat container has (the probe gets the same).
        docker_host: the stage's Docker host (``dockerHost``), None for the local one.
        hook_url: where the stack's hook delivers when that is not ``<app_url>/api/webhooks/logto``
            (webhook-key rotation: the key generation's in-network alias); None derives it.
    """

    stage: str
    generation: int
    app_url: str
    logto_url: str
    lobechat_url: str
    environment: Mapping[str, str] = field(repr=False)
    management: ManagementAccess | None = None
    application_id: str | None = None
    webhook_id: str | None = None
    network: str | None = None
    lobechat_image: str | None = None
    proxied_host_names: tuple[str, ...] = ()
    docker_host: str | None = None
    hook_url: str | None = None

    @property
    def issuer(self) -> str:
        """``AUTH_LOGTO_ISSUER`` as LobeChat holds it."""
        return self.environment.get("AUTH_LOGTO_ISSUER", "")

    @property
    def discovery_url(self) -> str:
        """The discovery URL LobeChat's server fetches (``<issuer>/.well-known/openid-configuration``)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def redirect_uri(self) -> str:
        return f"{self.app_url}/api/auth/callback/logto"

    @property
    def post_sign_out_uri(self) -> str:
        return f"{self.app_url}/"

    @property
    def webhook_url(self) -> str:
        """Where the stack's hook delivers (and so what the webhook check expects)."""
        return self.hook_url or f"{self.app_url}/api/webhooks/logto"

    def reach_logto(self, public_url: str) -> str:
        """``public_url`` (on Logto's public endpoint) as this machine reaches it (``logto_url``)."""
        return _rebase(public_url, self.logto_url)

    def reach_lobechat(self, public_url: str) -> str:
        """``public_url`` (on the LobeChat URL) as this machine reaches it (``lobechat_url``)."""
        return _rebase(public_url, self.lobechat_url)


def _rebase(url: str, origin: str) -> str:
    parts = urlsplit(url)
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return origin.rstrip("/") + rest


def _require(outputs: Mapping[str, Any], key: str, where: str) -> Any:
    value = outputs.get(key)
    if value in (None, ""):
        raise TargetError(
            f"the stack output {where}{key} is missing: run `pulumi up` with this version of the stack "
            "first (it exports what verification needs), or pass the values as flags (see --help)"
        )
    return value


def from_stack_outputs(stage: str, outputs: Mapping[str, Any]) -> VerificationTarget:
    """The target described by ``pulumi stack output --json --show-secrets`` of ``stage``."""
    extra = outputs.get(VERIFICATION_OUTPUT)
    if not isinstance(extra, Mapping):
        raise TargetError(
            f"the stack output {VERIFICATION_OUTPUT} is missing or not an object (did you pass --show-secrets?): "
            "run `pulumi up` with this version of the stack first, or pass the values as flags (see --help)"
        )
    environment = _require(outputs, "lobechatEnvironment", "")
    if not isinstance(environment, Mapping) or any(str(v).startswith("[secret]") for v in environment.values()):
        raise TargetError("the stack output lobechatEnvironment is not readable: run `pulumi stack output --json --show-secrets`")
    management = None
    m2m = extra.get("management")
    if isinstance(m2m, Mapping) and m2m.get("clientId") and m2m.get("clientSecret"):
        management = ManagementAccess(
            endpoint=str(m2m.get("endpoint") or extra.get("logtoUrl")),
            client_id=str(m2m["clientId"]),
            client_secret=str(m2m["clientSecret"]),
            resource=str(m2m.get("resource") or "https://default.logto.app/api"),
        )
    return VerificationTarget(
        stage=stage,
        generation=int(_require(extra, "generation", f"{VERIFICATION_OUTPUT}.")),
        app_url=str(_require(outputs, "lobechatUrl", "")),
        logto_url=str(_require(extra, "logtoUrl", f"{VERIFICATION_OUTPUT}.")),
        lobechat_url=str(_require(extra, "lobechatUrl", f"{VERIFICATION_OUTPUT}.")),
        environment={str(k): str(v) for k, v in environment.items()},
        management=management,
        application_id=extra.get("applicationId") or outputs.get("clientId"),
        webhook_id=extra.get("webhookId"),
        network=extra.get("network"),
        lobechat_image=extra.get("lobechatImage"),
        proxied_host_names=tuple(extra.get("proxiedHostNames") or ()),
        docker_host=extra.get("dockerHost"),
        hook_url=extra.get("webhookUrl") or None,
    )
