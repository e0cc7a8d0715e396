"""The checks of a deployed stage, and `run_verification`, which runs them all into one report.

Each check is one function returning a `CheckResult`; none raises (an unexpected error becomes a
failed result naming its type). Secrets (client secret, signing key, M2M secret) are sent where they
belong (the token endpoint, the Management API) and compared in constant time, never put in a result.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from components.container_labels import logs_hint
from components.logto_api import LogtoConnection, LogtoError, ManagementApi, tls
from components.verification.environment import environment_checks
from components.verification.probe import ProbeResult
from components.verification.report import CheckResult, VerificationReport, failed, passed, skipped
from components.verification.target import VerificationTarget

HTTP_TIMEOUT_S = 10.0
DEFAULT_EXPIRY_WARNING_DAYS = 14
DAY_MS = 86_400_000

Clock = Callable[[], int]
"""Milliseconds since the epoch (injected: tests never read the wall clock)."""


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


def _http_error(error: Exception) -> str:
    # requests' messages name the URL and the errno; they never carry a request header or body.
    reason = type(error).__name__
    handshake = tls.handshake_failure(error)
    if handshake:
        pending = "; the front may still be obtaining its certificate" if tls.is_transient(handshake) else ""
        return f"{reason} (TLS handshake failed: {handshake}{pending})"
    text = str(error)
    for marker in ("Name or service not known", "Connection refused", "timed out", "No route to host", "getaddrinfo"):
        if marker in text:
            return f"{reason} ({marker})"
    return reason


# --- Logto ---------------------------------------------------------------------------------------


def check_logto_status(target: VerificationTarget, session: requests.Session) -> CheckResult:
    name = "logto-status"
    url = target.logto_url.rstrip("/") + "/api/status"
    try:
        response = session.get(url, timeout=HTTP_TIMEOUT_S, allow_redirects=False)
    except requests.RequestException as error:
        return failed(name, f"GET {url}: {_http_error(error)}",
                      "Logto is down or not reachable from here: `"+logs_hint("logto")+"`; check logto.apiEndpoint and the published port")
    if response.status_code not in (200, 204):
        return failed(name, f"GET {url} answered {response.status_code}, not 204",
                      "Logto is not healthy: `"+logs_hint("logto")+"` (\"Missing target version\" or pending alterations: see the README's troubleshooting)")
    return passed(name, f"GET {url} answered {response.status_code}")


def evaluate_discovery(name: str, where: str, url: str, seen: ProbeResult, expected_issuer: str) -> CheckResult:
    """The verdict on one fetch of the discovery document (shared by the operator-side and in-network checks)."""
    if seen.error is not None or seen.status is None:
        fix = (
            "LobeChat's sign-in fails with `TypeError: fetch failed` (/api/auth/error?error=Configuration): make the "
            "issuer's host name resolve and answer inside the stage network (dev: the Logto container's network "
            "aliases; public names: DNS on the Docker host, or proxyOnDockerHost: true when the TLS proxy runs there)"
            if where == "inside the stage network"
            else "make the issuer reachable from here (DNS, TLS proxy), or set logto.apiEndpoint to where this machine reaches Logto"
        )
        return failed(name, f"{where}: GET {url} failed ({seen.error or 'no answer'})", fix)
    if seen.status != 200:
        return failed(name, f"{where}: GET {url} answered {seen.status}, not 200",
                      "the issuer must be Logto's ENDPOINT + /oidc exactly (logto.endpoint); route /oidc/* to Logto unchanged")
    if not seen.is_json or seen.issuer is None:
        return failed(
            name,
            f"{where}: GET {url} answered 200 with {seen.content_type or 'no content type'} but no JSON `issuer`: "
            "\"not a conform Authorization Server Metadata response\" (something other than Logto answers /.well-known)",
            "let /oidc/.well-known/* through to Logto unchanged (no login wall, no rewrite, no HTML fallback page in the proxy)",
        )
    if seen.issuer != expected_issuer:
        return failed(
            name,
            f"{where}: discovery advertises issuer {seen.issuer!r} but AUTH_LOGTO_ISSUER is {expected_issuer!r} "
            "(sign-in fails with an issuer mismatch)",
            "AUTH_LOGTO_ISSUER must equal Logto's ENDPOINT + /oidc character for character (scheme, host, port, no trailing slash); "
            "set logto.endpoint to the public URL and run `pulumi up`",
        )
    return passed(name, f"{where}: issuer {seen.issuer} as advertised")


def fetch_discovery(session: requests.Session, url: str) -> ProbeResult:
    """The discovery document at ``url`` as a ProbeResult (the same shape the in-network probe prints)."""
    try:
        response = session.get(url, timeout=HTTP_TIMEOUT_S, allow_redirects=False)
    except requests.RequestException as error:
        return ProbeResult(error=_http_error(error))
    content_type = response.headers.get("Content-Type")
    try:
        body = response.json()
    except ValueError:
        return ProbeResult(status=response.status_code, content_type=content_type)
    issuer = body.get("issuer") if isinstance(body, dict) else None
    return ProbeResult(response.status_code, content_type, isinstance(body, dict), issuer if isinstance(issuer, str) else None)


def check_discovery(target: VerificationTarget, session: requests.Session) -> CheckResult:
    url = target.reach_logto(target.discovery_url)
    return evaluate_discovery("issuer-discovery", "from this machine", url, fetch_discovery(session, url), target.issuer)


def check_discovery_in_network(target: VerificationTarget, probe: ProbeResult | str | None) -> CheckResult:
    name = "issuer-discovery-in-network"
    if probe is None or isinstance(probe, str):
        return skipped(name, f"the in-network probe did not run ({probe or 'turned off'}); run it with a Docker CLI that reaches the stage's host")
    return evaluate_discovery(name, "inside the stage network", target.discovery_url, probe, target.issuer)


# --- the Logto application ---------------------------------------------------------------------------


def _api(target: VerificationTarget) -> ManagementApi | None:
    access = target.management
    if access is None:
        return None
    return ManagementApi(LogtoConnection(access.endpoint, access.client_id, access.client_secret, access.resource))


def application_checks(target: VerificationTarget, api: ManagementApi | None, now_ms: Clock,
                       expiry_warning_days: int) -> list[CheckResult]:
    names = ("redirect-uri", "sign-out-uri", "cors-origin", "client-secret-expiry")
    client_id = target.environment.get("AUTH_LOGTO_ID", "")
    app_id = target.application_id or client_id
    if api is None:
        return [skipped(n, "no Management API credential (pass --m2m-client-id/--m2m-client-secret)") for n in names]
    try:
        app = api.applications.get(app_id)
        secrets = api.applications.list_secrets(app_id)
    except LogtoError as error:
        fix = ("the application AUTH_LOGTO_ID names does not exist in Logto: run `pulumi refresh` then `pulumi up` (it recreates it)"
               if error.status == 404 else error.hint or "check the Management API credential")
        return [failed(n, f"reading application {app_id}: {error.summary} (HTTP {error.status})", fix) for n in names]
    results = []
    metadata = app.get("oidcClientMetadata") or {}
    custom = app.get("customClientMetadata") or {}
    for name, label, values, wanted in (
        ("redirect-uri", "redirect URIs", metadata.get("redirectUris") or [], target.redirect_uri),
        ("sign-out-uri", "post sign-out redirect URIs", metadata.get("postLogoutRedirectUris") or [], target.post_sign_out_uri),
        ("cors-origin", "CORS allowed origins", custom.get("corsAllowedOrigins") or [], target.app_url),
    ):
        if wanted in values:
            results.append(passed(name, f"{label} of {app_id} contain {wanted}"))
        else:
            problem = " (oidc.invalid_redirect_uri at sign-in)" if name == "redirect-uri" else ""
            results.append(failed(name, f"{label} of {app_id} are {values}, not containing {wanted}{problem}",
                                  "run `pulumi up` (it sets them from lobechatUrl), or add it in the console: Applications -> LobeChat"))
    results.append(_secret_expiry(target, secrets, now_ms, expiry_warning_days))
    return results


def _secret_expiry(target: VerificationTarget, secrets: Any, now_ms: Clock, warning_days: int) -> CheckResult:
    name = "client-secret-expiry"
    held = target.environment.get("AUTH_LOGTO_SECRET", "")
    entry = next(
        (s for s in secrets or [] if isinstance(s, Mapping) and isinstance(s.get("value"), str) and held
         and hmac.compare_digest(s["value"].encode(), held.encode())),
        None,
    )
    if entry is None:
        return failed(name, "AUTH_LOGTO_SECRET is none of the application's named secrets",
                      "set AUTH_LOGTO_SECRET from the application's secrets (the stack uses `Default secret`: run `pulumi up --refresh`)")
    expires_at = entry.get("expiresAt")
    label = f"secret {entry.get('name')!r}"
    if expires_at is None:
        return passed(name, f"{label} never expires")
    remaining = int(expires_at) - now_ms()
    if remaining <= 0:
        return failed(name, f"{label} expired (invalid_client: \"client secret has expired\")",
                      "create a new secret and roll LobeChat to it (`pulumi up` after rotating; see the README's rotation section)")
    if remaining < warning_days * DAY_MS:
        days = remaining / DAY_MS
        return failed(name, f"{label} expires in {days:.1f} days (warning window {warning_days} days)",
                      "rotate it now: create a new secret, roll LobeChat to it, then delete the old one")
    return passed(name, f"{label} expires in {remaining // DAY_MS} days")


def check_client_authentication(target: VerificationTarget, session: requests.Session) -> CheckResult:
    """The client id and secret LobeChat holds pass client authentication at the token endpoint.

    A refresh-token grant with a bogus token: Logto authenticates the client first, so 400
    ``invalid_grant`` means the credentials are right and 401 ``invalid_client`` that they are not
    (recorded in the contract, 07-app-credentials-at-token-endpoint.json). No token is issued.
    """
    name = "client-authentication"
    client_id = target.environment.get("AUTH_LOGTO_ID", "")
    secret = target.environment.get("AUTH_LOGTO_SECRET", "")
    if not client_id or not secret:
        return failed(name, "AUTH_LOGTO_ID or AUTH_LOGTO_SECRET is empty", "run `pulumi up` (the stack sets both)")
    url = target.reach_logto(target.issuer.rstrip("/") + "/token")
    try:
        response = session.post(
            url, data={"grant_type": "refresh_token", "refresh_token": "lobechat-logto-verification"},
            auth=(client_id, secret), timeout=HTTP_TIMEOUT_S, allow_redirects=False,
        )
    except requests.RequestException as error:
        return failed(name, f"POST {url}: {_http_error(error)}", "make Logto's token endpoint reachable (see logto-status)")
    try:
        body = response.json()
    except ValueError:
        body = {}
    error_code = body.get("error") if isinstance(body, dict) else None
    if response.status_code == 401 or error_code == "invalid_client":
        return failed(name, f"POST {url} answered {response.status_code} invalid_client for client {client_id}",
                      "AUTH_LOGTO_SECRET is wrong, expired or rotated out (or AUTH_LOGTO_ID names another app): run `pulumi up --refresh` "
                      "so LobeChat gets the application's current secret; check the variable names (environment-names)")
    if response.status_code == 400:
        return passed(name, f"client {client_id} authenticated (the bogus grant was refused as {error_code or 'invalid'})")
    return failed(name, f"POST {url} answered {response.status_code}", "Logto's token endpoint misbehaves: `"+logs_hint("logto")+"`")


# --- the webhook -------------------------------------------------------------------------------------

_STATUS_IN_MESSAGE = re.compile(r"(?:status code|Response code) (\d{3})")


def check_webhook(target: VerificationTarget, api: ManagementApi | None) -> CheckResult:
    name = "webhook-delivery"
    if "LOGTO_WEBHOOK_SIGNING_KEY" not in target.environment:
        return skipped(name, "the webhook is off on this stage (webhook.enabled: false)")
    if api is None:
        return skipped(name, "no Management API credential (pass --m2m-client-id/--m2m-client-secret)")
    try:
        hook_id = target.webhook_id
        if not hook_id:
            hook_id = next((h["id"] for h in api.hooks.list_all()
                            if (h.get("config") or {}).get("url") == target.webhook_url), None)
            if hook_id is None:
                return failed(name, f"no Logto webhook delivers to {target.webhook_url}", "run `pulumi up` (it creates the webhook)")
        hook = api.hooks.get(hook_id)
        config = hook.get("config") or {}
        if config.get("url") != target.webhook_url or not hook.get("enabled", True):
            return failed(name, f"webhook {hook_id} delivers to {config.get('url')!r} (enabled: {hook.get('enabled')}), not {target.webhook_url}",
                          "run `pulumi up` (it sets the webhook URL from lobechatUrl)")
        signing_key_matches = hmac.compare_digest(str(hook.get("signingKey", "")).encode(),
                                                  target.environment.get("LOGTO_WEBHOOK_SIGNING_KEY", "").encode())
        api.hooks.test(hook_id, url=config["url"], events=["User.Data.Updated"], headers=config.get("headers") or None)
    except LogtoError as error:
        text = f"{error.logto_message or ''} {error.summary}"
        status = _STATUS_IN_MESSAGE.search(text)
        code = int(status.group(1)) if status else None
        if code == 400:
            return failed(name, f"the test delivery to {target.webhook_url} was refused with 400: the signature does not verify "
                          "(LobeChat's LOGTO_WEBHOOK_SIGNING_KEY is not the hook's signing key)",
                          "the key changed in Logto (rotated in the console?): run `pulumi up --refresh` so LobeChat gets the hook's key "
                          "(a new key needs a new LobeChat container)")
        if code is not None and code >= 500:
            return failed(name, f"the test delivery to {target.webhook_url} got {code} from LobeChat",
                          "LobeChat lacks LOGTO_WEBHOOK_SIGNING_KEY or failed: `"+logs_hint("lobechat")+"`")
        if error.status == 422:
            return failed(name, f"Logto could not deliver to {target.webhook_url}: {error.logto_message or error.summary}",
                          "Logto must reach the LobeChat URL from its container (dev: the LobeChat network alias; public: DNS/proxy, proxyOnDockerHost)")
        return failed(name, f"webhook test: {error.summary} (HTTP {error.status})", error.hint or "check the Management API credential")
    if not signing_key_matches:
        return failed(name, "the test delivery was accepted, but LOGTO_WEBHOOK_SIGNING_KEY is not the hook's current key",
                      "run `pulumi up --refresh` so LobeChat gets the hook's key")
    return passed(name, f"test delivery of User.Data.Updated to {target.webhook_url} accepted")


# --- LobeChat ----------------------------------------------------------------------------------------


def check_lobechat_answers(target: VerificationTarget, session: requests.Session) -> CheckResult:
    name = "lobechat-answers"
    path = "/api/version" if target.generation == 2 else "/"
    url = target.reach_lobechat(target.app_url + path)
    try:
        response = session.get(url, timeout=HTTP_TIMEOUT_S, allow_redirects=False)
    except requests.RequestException as error:
        return failed(name, f"GET {url}: {_http_error(error)}", "LobeChat is down or not reachable: `"+logs_hint("lobechat")+"`")
    healthy = response.status_code == 200 if target.generation == 2 else response.status_code < 500
    if not healthy:
        return failed(name, f"GET {url} answered {response.status_code}", "`"+logs_hint("lobechat")+"` (database migrations, environment)")
    return passed(name, f"GET {url} answered {response.status_code}")


def _sign_in_location(target: VerificationTarget, session: requests.Session) -> str:
    """Where LobeChat's "sign in with Logto" sends the browser (raises on an unexpected answer)."""
    if target.generation == 2:
        url = target.reach_lobechat(target.app_url + "/api/auth/sign-in/oauth2")
        response = session.post(url, json={"providerId": "logto", "callbackURL": "/"}, timeout=HTTP_TIMEOUT_S, allow_redirects=False)
        body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
        location = body.get("url") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(location, str):
            raise ValueError(f"POST {url} answered {response.status_code} without a sign-in URL")
        return location
    csrf_url = target.reach_lobechat(target.app_url + "/api/auth/csrf")
    csrf = session.get(csrf_url, timeout=HTTP_TIMEOUT_S)
    token = csrf.json().get("csrfToken") if csrf.status_code == 200 else None
    if not token:
        raise ValueError(f"GET {csrf_url} answered {csrf.status_code} without a csrfToken")
    url = target.reach_lobechat(target.app_url + "/api/auth/signin/logto")
    response = session.post(url, data={"csrfToken": token, "callbackUrl": target.app_url}, timeout=HTTP_TIMEOUT_S, allow_redirects=False)
    location = response.headers.get("Location")
    if response.status_code not in (302, 303) or not location:
        raise ValueError(f"POST {url} answered {response.status_code} without a redirect")
    return location


def check_sign_in_redirect(target: VerificationTarget, session: requests.Session) -> CheckResult:
    name = "sign-in-redirect"
    try:
        location = _sign_in_location(target, session)
    except (requests.RequestException, ValueError) as error:
        detail = _http_error(error) if isinstance(error, requests.RequestException) else str(error)
        return failed(name, f"LobeChat's sign-in did not redirect to Logto: {detail}",
                      "check `logto` in the providers and LobeChat's log (a discovery failure shows here too)")
    parts = urlsplit(location)
    query = parse_qs(parts.query)
    redirect_uri = (query.get("redirect_uri") or [""])[0]
    client_id = (query.get("client_id") or [""])[0]
    authorize = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if not authorize.startswith(target.issuer.rstrip("/") + "/"):
        return failed(name, f"sign-in goes to {authorize}, not to the issuer {target.issuer}", "AUTH_LOGTO_ISSUER must be the public Logto issuer")
    if redirect_uri != target.redirect_uri:
        return failed(name, f"sign-in asks Logto to return to {redirect_uri or '(none)'}, registered is {target.redirect_uri} "
                      "(oidc.invalid_redirect_uri)",
                      "APP_URL (2.x) / NEXTAUTH_URL (1.x) must be the public LobeChat URL (see environment-urls)")
    if client_id != target.environment.get("AUTH_LOGTO_ID"):
        return failed(name, f"sign-in uses client {client_id}, AUTH_LOGTO_ID is another", "restart LobeChat with the current environment (`pulumi up`)")
    return passed(name, f"sign-in redirects to {authorize} with redirect_uri {redirect_uri}")


# --- all of them ---------------------------------------------------------------------------------------


def run_verification(
    target: VerificationTarget,
    *,
    probe: ProbeResult | str | None = None,
    now_ms: Clock = _wall_clock_ms,
    expiry_warning_days: int = DEFAULT_EXPIRY_WARNING_DAYS,
) -> VerificationReport:
    """Run every check against ``target``; ``probe`` is the in-network probe's result (or why it did not run)."""
    report = VerificationReport(target.stage)
    session = requests.Session()
    session.trust_env = False  # a proxy from the environment would answer instead of the stage
    api = _api(target)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("logto-status", lambda: check_logto_status(target, session)),
        ("issuer-discovery", lambda: check_discovery(target, session)),
        ("issuer-discovery-in-network", lambda: check_discovery_in_network(target, probe)),
        ("application", lambda: application_checks(target, api, now_ms, expiry_warning_days)),
        ("client-authentication", lambda: check_client_authentication(target, session)),
        ("webhook-delivery", lambda: check_webhook(target, api)),
        ("lobechat-answers", lambda: check_lobechat_answers(target, session)),
        ("sign-in-redirect", lambda: check_sign_in_redirect(target, session)),
        ("environment", lambda: environment_checks(target.environment, target.generation, target.app_url)),
    ]
    try:
        for step, run in steps:
            try:
                outcome = run()
            except Exception as error:  # noqa: BLE001 - one broken check must not hide the others
                outcome = failed(step, f"the check itself failed: {type(error).__name__}", "report this; the other checks still ran")
            for result in outcome if isinstance(outcome, list) else [outcome]:
                report.add(result)
    finally:
        session.close()
    return report
