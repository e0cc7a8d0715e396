"""HTTP side of the Logto stand-in: routing, authentication, JSON in and out, faults, latency.

The state and its rules live in ``models.py``; this module only turns HTTP requests into calls on
``LogtoState`` and its answers (or ``ApiError``s) into HTTP responses, the way the real server
shapes them (``application/json; charset=utf-8``, ``Total-Number`` on paginated lists, no body on 204).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from .contract_files import openapi_spec_path
from .faults import FaultInjector
from .models import MANAGEMENT_API_RESOURCE, TOKEN_TTL_SECONDS, ApiError, LogtoState, Page, invalid_pagination
from .openapi_check import OpenApiContract, shared_contract

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class LoggedRequest(NamedTuple):
    """One request the stand-in saw; ``status`` is ``None`` when the connection was dropped."""

    method: str
    path: str
    status: int | None


@dataclass
class Response:
    """An HTTP answer before it is written."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = JSON_CONTENT_TYPE

    def encode(self) -> bytes:
        """The body bytes (empty for 204 and bodiless answers)."""
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()


RECORDED_LOGTO_VERSION = "1.37.1"
"""The version the recordings in ``shared/logto-contract`` come from (the stand-in's default)."""


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3])


def newer_logto_answer(response: Response) -> Response:
    """The same answer as Logto 1.42 and newer give it (``shared/logto-contract/README.md``): the app's
    internal ``secret`` is left out, ``appLevelAccessControlEnabled`` is added, and a secret created
    for a missing application is a plain ``entity.not_exists_with_id``."""
    body = response.body
    if isinstance(body, dict) and body.get("code") == "entity.relation_foreign_key_not_found":
        body = {"code": "entity.not_exists_with_id", "message": "The applications with the given ID does not exist."}
    else:
        body = _newer_application_rows(body)
    return Response(response.status, body, response.headers, response.raw, response.content_type)


def _newer_application_rows(body: Any) -> Any:
    if isinstance(body, list):
        return [_newer_application_rows(item) for item in body]
    if isinstance(body, dict) and "oidcClientMetadata" in body and "type" in body:
        row = {k: v for k, v in body.items() if not (k == "secret" and str(v).startswith("#internal:"))}
        row.setdefault("appLevelAccessControlEnabled", False)
        return row
    return body


@dataclass(frozen=True)
class Request:
    """What a route handler gets: the parsed request plus the path parameters."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    params: dict[str, str]
    client_ip: str

    def json(self) -> Any:
        """The JSON body (``{}`` when empty); malformed JSON is a 400 with only ``message``, as in Logto."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as error:
            if error.pos >= len(error.doc.rstrip()):
                message = "Unexpected end of JSON input"
            else:
                message = f"Unexpected token {error.doc[error.pos]} in JSON at position {error.pos}"
            raise ApiError(400, None, message) from None
        except UnicodeDecodeError:
            raise ApiError(400, None, "Unexpected token in JSON at position 0") from None

    def int_param(self, name: str) -> int | None:
        """A pagination parameter, or ``None`` when absent."""
        values = self.query.get(name)
        if not values:
            return None
        try:
            return int(values[-1])
        except ValueError:
            raise invalid_pagination() from None

    def flag(self, name: str) -> bool | None:
        """``true``/``false`` query parameter, ``None`` when absent."""
        values = self.query.get(name)
        if not values:
            return None
        return values[-1].lower() == "true"


def _page_response(page: Page) -> Response:
    headers = {} if page.total is None else {"Total-Number": str(page.total)}
    return Response(200, page.items, headers)


def openid_configuration(endpoint: str) -> dict[str, Any]:
    """The discovery document, with the same members as the one recorded from Logto 1.37.1."""
    oidc = endpoint + "/oidc"
    return {
        "authorization_endpoint": f"{oidc}/auth",
        "claims_parameter_supported": False,
        "claims_supported": [
            "sub", "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
            "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
            "username", "created_at", "email", "email_verified", "phone_number", "phone_number_verified",
            "address", "custom_data", "identities", "sso_identities", "roles", "organizations",
            "organization_data", "organization_roles", "sid", "auth_time", "iss",
        ],
        "code_challenge_methods_supported": ["S256"],
        "end_session_endpoint": f"{oidc}/session/end",
        "grant_types_supported": [
            "implicit", "authorization_code", "refresh_token", "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ],
        "issuer": oidc,
        "jwks_uri": f"{oidc}/jwks",
        "authorization_response_iss_parameter_supported": True,
        "response_modes_supported": ["form_post", "fragment", "query"],
        "response_types_supported": ["code id_token", "code", "id_token", "none"],
        "scopes_supported": [
            "openid", "offline_access", "profile", "email", "phone", "address", "custom_data", "identities",
            "roles", "urn:logto:scope:organizations", "urn:logto:scope:organization_roles",
            "urn:logto:scope:sessions",
        ],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_jwt", "client_secret_post", "private_key_jwt", "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["HS256", "RS256", "PS256", "ES256", "EdDSA"],
        "token_endpoint": f"{oidc}/token",
        "id_token_signing_alg_values_supported": ["ES384"],
        "pushed_authorization_request_endpoint": f"{oidc}/request",
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{oidc}/me",
        "introspection_endpoint": f"{oidc}/token/introspection",
        "revocation_endpoint": f"{oidc}/token/revocation",
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "claim_types_supported": ["normal"],
    }


_MINIMAL_SWAGGER = {"openapi": "3.0.1", "info": {"title": "Logto API references", "version": "Cloud"}, "paths": {}}
_swagger_lock = threading.Lock()
_swagger_bytes: bytes | None = None


def _swagger_document() -> bytes:
    global _swagger_bytes
    with _swagger_lock:
        if _swagger_bytes is None:
            path = openapi_spec_path()
            _swagger_bytes = path.read_bytes() if path.is_file() else json.dumps(_MINIMAL_SWAGGER).encode()
        return _swagger_bytes


# --------------------------------------------------------------------------------------------------
# routes


Handler = Callable[["LogtoStandIn", Request], Response]
_ROUTES: list[tuple[str, re.Pattern[str], Handler, bool]] = []


def _route(method: str, pattern: str, *, auth: bool = True) -> Callable[[Handler], Handler]:
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

    def register(handler: Handler) -> Handler:
        _ROUTES.append((method, regex, handler, auth))
        return handler

    return register


def _basic_credentials(authorization: str | None) -> tuple[bool, tuple[str, str] | None]:
    """(Basic scheme present, decoded id and secret or None when undecodable)."""
    if not authorization or not authorization.startswith("Basic "):
        return False, None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return True, None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return True, None
    # client_secret_basic form-encodes both parts before base64 (RFC 6749 2.3.1)
    return True, (unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " ")))


@_route("POST", "/oidc/token", auth=False)
def _token(logto: LogtoStandIn, request: Request) -> Response:
    content_type = (request.headers.get("Content-Type") or "").lower()
    form: dict[str, str] = {}
    if "application/x-www-form-urlencoded" in content_type:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    basic_present, basic = _basic_credentials(request.headers.get("Authorization"))
    return Response(200, logto.state.token_request(form, basic, basic_present=basic_present),
                    {"Cache-Control": "no-store"})


@_route("GET", "/oidc/.well-known/openid-configuration", auth=False)
def _discovery(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, openid_configuration(logto.public_endpoint or logto.endpoint))


@_route("GET", "/api/status", auth=False)
def _status(logto: LogtoStandIn, request: Request) -> Response:
    return Response(204)


@_route("GET", "/api/swagger.json", auth=False)
def _swagger(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, raw=_swagger_document())


@_route("GET", "/api/applications")
def _list_applications(logto: LogtoStandIn, request: Request) -> Response:
    types = [item for value in request.query.get("types", []) for item in value.split(",") if item]
    search_values = request.query.get("search")
    page = logto.state.list_applications(
        types=types, search=search_values[-1] if search_values else None,
        is_third_party=request.flag("isThirdParty"),
        page=request.int_param("page"), page_size=request.int_param("page_size"),
    )
    return _page_response(page)


@_route("POST", "/api/applications")
def _create_application(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.create_application(request.json()))


@_route("GET", "/api/applications/{id}")
def _get_application(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.get_application(request.params["id"]))


@_route("PATCH", "/api/applications/{id}")
def _update_application(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.update_application(request.params["id"], request.json()))


@_route("DELETE", "/api/applications/{id}")
def _delete_application(logto: LogtoStandIn, request: Request) -> Response:
    logto.state.delete_application(request.params["id"])
    return Response(204)


@_route("DELETE", "/api/applications/{id}/legacy-secret")
def _delete_legacy_secret(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.delete_legacy_secret(request.params["id"]))


@_route("GET", "/api/applications/{id}/secrets")
def _list_secrets(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.list_secrets(request.params["id"]))


@_route("POST", "/api/applications/{id}/secrets")
def _create_secret(logto: LogtoStandIn, request: Request) -> Response:
    return Response(201, logto.state.create_secret(request.params["id"], request.json()))


@_route("PATCH", "/api/applications/{id}/secrets/{name}")
def _rename_secret(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.rename_secret(request.params["id"], request.params["name"], request.json()))


@_route("DELETE", "/api/applications/{id}/secrets/{name}")
def _delete_secret(logto: LogtoStandIn, request: Request) -> Response:
    logto.state.delete_secret(request.params["id"], request.params["name"])
    return Response(204)


@_route("GET", "/api/hooks")
def _list_hooks(logto: LogtoStandIn, request: Request) -> Response:
    page = logto.state.list_hooks(
        include_stats=bool(request.flag("includeExecutionStats")),
        page=request.int_param("page"), page_size=request.int_param("page_size"),
    )
    return _page_response(page)


@_route("POST", "/api/hooks")
def _create_hook(logto: LogtoStandIn, request: Request) -> Response:
    return Response(201, logto.state.create_hook(request.json()))


@_route("GET", "/api/hooks/{id}")
def _get_hook(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.get_hook(request.params["id"],
                                              include_stats=bool(request.flag("includeExecutionStats"))))


@_route("PATCH", "/api/hooks/{id}")
def _update_hook(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.update_hook(request.params["id"], request.json()))


@_route("DELETE", "/api/hooks/{id}")
def _delete_hook(logto: LogtoStandIn, request: Request) -> Response:
    logto.state.delete_hook(request.params["id"])
    return Response(204)


@_route("PATCH", "/api/hooks/{id}/signing-key")
def _rotate_signing_key(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.rotate_signing_key(request.params["id"]))


@_route("POST", "/api/hooks/{id}/test")
def _test_hook(logto: LogtoStandIn, request: Request) -> Response:
    logto.state.test_hook(request.params["id"], request.json())
    return Response(204)


@_route("GET", "/api/hooks/{id}/recent-logs")
def _recent_logs(logto: LogtoStandIn, request: Request) -> Response:
    page = logto.state.recent_hook_logs(request.params["id"], page=request.int_param("page"),
                                        page_size=request.int_param("page_size"))
    return _page_response(page)


@_route("GET", "/api/users")
def _list_users(logto: LogtoStandIn, request: Request) -> Response:
    return _page_response(logto.state.list_users(page=request.int_param("page"),
                                                 page_size=request.int_param("page_size")))


@_route("POST", "/api/users")
def _create_user(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.create_user(request.json()))


@_route("GET", "/api/users/{id}")
def _get_user(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.get_user(request.params["id"]))


@_route("PATCH", "/api/users/{id}")
def _update_user(logto: LogtoStandIn, request: Request) -> Response:
    return Response(200, logto.state.update_user(
        request.params["id"], request.json(),
        user_agent=request.headers.get("User-Agent"), ip=request.client_ip,
    ))


@_route("DELETE", "/api/users/{id}")
def _delete_user(logto: LogtoStandIn, request: Request) -> Response:
    logto.state.delete_user(request.params["id"])
    return Response(204)


# --------------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, standin: LogtoStandIn, port: int = 0) -> None:
        self.standin = standin
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.accepted_connections = 0
        super().__init__(("127.0.0.1", port), _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
            self.accepted_connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeout, dropped session) is normal in fault tests: stay quiet."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def close_open_connections(self) -> None:
        """Cut keep-alive connections still open, so no client is served after the stand-in stops."""
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LogtoStandIn/1.37.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # one write per answer and no Nagle delay, so keep-alive requests are not held back 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        """Silence the per-request stderr line."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        standin = self.server.standin
        method = self.command.upper()
        body = self._read_body()
        url = urlsplit(self.path)
        path = url.path
        if standin.latency > 0:
            time.sleep(standin.latency)
        standin._record_violations(method, path, url.query, self.headers, body)
        fault = standin.faults.take(method, path)
        if fault is not None:
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "status":
                headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                standin._log(method, self.path, fault.status)
                self._write(Response(fault.status, {"message": f"stand-in fault: status {fault.status}"}, headers))
                return
            elif fault.kind == "gateway_then_commit":
                standin._log(method, self.path, fault.status)
                standin.deferred.append((method, path, url.query, self.headers, body, self.client_address[0]))
                page = f"<html><body><h1>{fault.status} gateway error</h1></body></html>".encode()
                self._write(Response(fault.status, raw=page, content_type="text/html"))
                return
            elif fault.kind == "drop":
                standin._log(method, self.path, None)
                self._drop()
                return
        response = standin._handle(method, path, url.query, self.headers, body, self.client_address[0])
        if fault is not None and fault.kind == "drop_after_commit":
            standin._log(method, self.path, None)
            self._drop()
            return
        # logged before writing, so a client that reads requests_log after its call sees the call
        standin._log(method, self.path, response.status)
        self._write(response)

    def _write(self, response: Response) -> None:
        payload = b"" if response.status in (204, 304) else response.encode()
        lines = [f"{self.protocol_version} {response.status} {self.responses.get(response.status, ('',))[0]}"]
        lines.append(f"Date: {self.date_time_string()}")
        if payload:
            lines.append(f"Content-Type: {response.content_type}")
        for name, value in response.headers.items():
            lines.append(f"{name}: {value}")
        if response.status not in (204, 304):
            lines.append(f"Content-Length: {len(payload)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + payload)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class LogtoStandIn:
    """A Logto server for tests: real HTTP on 127.0.0.1 (ephemeral port), state in memory.

    Use as a context manager; it serves from a daemon thread and stops on exit. See ``/work/plan.md``
    for the interface: ``endpoint``, ``m2m_client_id``/``m2m_client_secret`` (a seeded M2M app with the
    Management API role), ``add_m2m_app``, ``state``, ``requests_log``, ``faults``, ``latency``,
    ``expire_all_tokens``, ``openapi_violations``.
    """

    def __init__(
        self,
        *,
        token_ttl: int = TOKEN_TTL_SECONDS,
        management_resource: str = MANAGEMENT_API_RESOURCE,
        check_openapi: bool = True,
        logto_version: str = RECORDED_LOGTO_VERSION,
        public_endpoint: str | None = None,
    ) -> None:
        # Logto's ENDPOINT when it differs from where the test reaches the stand-in (e.g.
        # http://auth.localhost:3001): discovery advertises and tokens carry <public_endpoint>/oidc.
        self.public_endpoint = public_endpoint.rstrip("/") if public_endpoint else None
        self.state = LogtoState(management_resource=management_resource, token_ttl=token_ttl)
        self.answer_as(logto_version)
        self.faults = FaultInjector()
        self.deferred: list[tuple] = []
        """Requests a ``gateway_then_commit`` fault answered for but has not performed yet."""
        self.latency = 0.0
        self.requests_log: list[LoggedRequest] = []
        self.openapi_violations: list[str] = []
        # Without the recorded document (no shared/ folder) there is nothing to check against.
        spec_available = openapi_spec_path().is_file()
        self._contract: OpenApiContract | None = shared_contract() if check_openapi and spec_available else None
        self._log_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.m2m_client_id, self.m2m_client_secret = self.state.insert_legacy_app(
            name="Stand-in M2M (Management API)", description="Seeded like the bootstrap SQL", with_role=True,
        )

    def answer_as(self, logto_version: str) -> None:
        """Answer as that Logto version: the recordings are of 1.37.1, and from 1.42 Logto answers a
        little differently (see :func:`newer_logto_answer`)."""
        self.logto_version = logto_version
        self._newer_answers = _version_tuple(logto_version) >= (1, 42)

    def __repr__(self) -> str:
        return f"LogtoStandIn(endpoint={self.endpoint if self._server else None!r})"

    # ---- lifecycle ---------------------------------------------------------------------------------

    def start(self, port: int = 0) -> LogtoStandIn:
        """Bind 127.0.0.1 on a free port (or ``port``) and serve from a daemon thread."""
        if self._server is not None:
            return self
        if self._contract is not None:
            self._contract.preload()  # pay the 1.9 MB parse before the first request, not during it
        self._server = _Server(self, port)
        self.state.issuer = (self.public_endpoint or self.endpoint) + "/oidc"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"logto-standin-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port and cut open keep-alive connections."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_open_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def restart(self, port: int) -> None:
        """Serve again on ``port`` with the same state: Logto back after a restart (its database kept)."""
        self.stop()
        self.start(port)

    def __enter__(self) -> LogtoStandIn:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # ---- what tests use ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The ephemeral port (only while started)."""
        if self._server is None:
            raise RuntimeError("the Logto stand-in is not started: use it as `with LogtoStandIn() as logto:`")
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash; the OIDC issuer is this plus ``/oidc``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        """The OIDC issuer, ``endpoint + "/oidc"`` (``public_endpoint + "/oidc"`` when set)."""
        return (self.public_endpoint or self.endpoint) + "/oidc"

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far (a keep-alive client reuses one)."""
        return self._server.accepted_connections if self._server is not None else 0

    def add_m2m_app(self, with_role: bool) -> tuple[str, str]:
        """Another M2M application (id, secret); without the role its tokens get 403 ``auth.forbidden``."""
        return self.state.add_m2m_app(with_role=with_role)

    def expire_all_tokens(self) -> None:
        """Tokens issued so far now answer 401 like an expired JWT (``ERR_JWT_EXPIRED``)."""
        self.state.expire_all_tokens()

    # ---- request handling --------------------------------------------------------------------------

    def commit_deferred(self) -> int:
        """Perform the requests kept by ``gateway_then_commit`` faults (Logto finishing them late)."""
        done = 0
        while self.deferred:
            method, path, query, headers, body, client_ip = self.deferred.pop(0)
            self._handle(method, path, query, headers, body, client_ip)
            done += 1
        return done

    def _log(self, method: str, path_with_query: str, status: int | None) -> None:
        with self._log_lock:
            self.requests_log.append(LoggedRequest(method, path_with_query, status))

    def _record_violations(self, method: str, path: str, query: str, headers: Any, body: bytes) -> None:
        if self._contract is None:
            return
        content_type = headers.get("Content-Type")
        if path == "/oidc/token" and method == "POST":
            has_basic = (headers.get("Authorization") or "").startswith("Basic ")
            problems = self._contract.check_token_request(content_type, body, has_basic)
        elif path.startswith("/api/"):
            problems = self._contract.check_request(method, path, query, content_type, body)
        else:
            return
        if problems:
            with self._log_lock:
                self.openapi_violations.extend(problems)

    def _handle(self, method: str, path: str, query: str, headers: Any, body: bytes, client_ip: str) -> Response:
        allowed = False
        for route_method, regex, handler, needs_auth in _ROUTES:
            match = regex.match(path)
            if match is None:
                continue
            allowed = True
            if route_method != method:
                continue
            params = {name: unquote(value) for name, value in match.groupdict().items()}
            request = Request(method, path, parse_qs(query, keep_blank_values=True), headers, body, params, client_ip)
            try:
                if needs_auth:
                    self.state.authenticate_bearer(headers.get("Authorization"))
                response = handler(self, request)
            except ApiError as error:
                response = Response(error.status, error.body(), dict(error.headers))
            return newer_logto_answer(response) if self._newer_answers else response
        if allowed:
            return Response(405, raw=b"Method Not Allowed", content_type="text/plain; charset=utf-8")
        return Response(404, raw=b"Not Found", content_type="text/plain; charset=utf-8")
