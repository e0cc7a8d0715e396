"""Checks each request the stand-in receives against the OpenAPI document of the real Logto server.

The document (``logto-openapi.json``, 1.9 MB) is loaded once per process, on first use; the
validator for each operation is compiled once and cached. A violation is a short sentence naming
the method, the path template and what is wrong; it never quotes a value from the request, so no
secret can end up in it.

Logto generates its document from zod guards, and three artefacts of that would make every valid
request fail a literal check; they are repaired before compiling (see ``_repair``):
redirect-URI items are declared ``{"type": "object", "description": "Validator function"}`` although
the server takes (and the recordings send) strings; ``pattern`` values carry JavaScript slashes
(``/^...$/``); and ``oneOf`` stands for zod's ``union``, where several branches may match
(``anyOf`` semantics).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from openapi_schema_validator import OAS30Validator

from .contract_files import openapi_spec_path

TOKEN_FORM_FIELDS = frozenset({
    "grant_type", "resource", "scope", "client_id", "client_secret", "refresh_token",
    "organization_id", "code", "redirect_uri", "code_verifier", "subject_token", "subject_token_type",
})


def _repair(node: Any) -> Any:
    """The schema with the zod-generator artefacts (see the module docstring) made checkable."""
    if isinstance(node, list):
        return [_repair(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") == "object" and node.get("description") == "Validator function":
        return {"type": "string"}
    repaired = {}
    for key, value in node.items():
        if key == "oneOf":
            repaired["anyOf"] = _repair(value)
        elif key == "pattern" and isinstance(value, str) and len(value) > 1 and value.startswith("/") and value.endswith("/"):
            repaired[key] = value[1:-1]
        elif key == "format":
            continue  # zod's formats ("regex", "empty", '"true"') are not JSON-schema formats
        else:
            repaired[key] = _repair(value)
    return repaired


def _deref(node: Any, spec: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline local ``$ref``s (the request schemas only point into ``components``)."""
    if isinstance(node, list):
        return [_deref(item, spec, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        if ref in seen:
            return {}
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return _deref(target, spec, (*seen, ref))
    return {key: _deref(value, spec, seen) for key, value in node.items()}


@dataclass
class _Operation:
    template: str
    method: str
    query_params: dict[str, tuple[dict[str, Any], OAS30Validator]] = field(default_factory=dict)
    free_form_query: bool = False
    body_required: bool = False
    body_validator: OAS30Validator | None = None
    has_body: bool = False


class OpenApiContract:
    """The recorded OpenAPI document, ready to check requests (``check_request``, ``check_token_request``)."""

    def __init__(self, spec_path: Path) -> None:
        self._spec_path = spec_path
        self._lock = threading.Lock()
        self._spec: dict[str, Any] | None = None
        self._templates: list[tuple[re.Pattern[str], str, int]] = []
        self._operations: dict[tuple[str, str], _Operation] = {}

    def _load(self) -> dict[str, Any]:
        with self._lock:
            if self._spec is None:
                spec = json.loads(self._spec_path.read_text(encoding="utf-8"))
                templates = []
                for template in spec.get("paths", {}):
                    regex = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
                    literal_segments = sum(1 for part in template.split("/") if part and not part.startswith("{"))
                    templates.append((re.compile(regex), template, literal_segments))
                # A literal segment beats a parameter (``/api/hooks/{id}`` vs a fixed sub-path).
                templates.sort(key=lambda item: -item[2])
                self._templates = templates
                self._spec = spec
            return self._spec

    def preload(self) -> None:
        """Parse the document now (it is otherwise parsed on the first check)."""
        self._load()

    def _match(self, path: str) -> str | None:
        self._load()
        for regex, template, _ in self._templates:
            if regex.match(path):
                return template
        return None

    def _operation(self, template: str, method: str) -> _Operation | None:
        key = (template, method)
        with self._lock:
            cached = self._operations.get(key)
        if cached is not None:
            return cached
        spec = self._load()
        path_item = spec["paths"][template]
        op = path_item.get(method)
        if not isinstance(op, dict):
            return None
        operation = _Operation(template=template, method=method.upper())
        for parameter in [*path_item.get("parameters", []), *op.get("parameters", [])]:
            parameter = _deref(parameter, spec)
            if parameter.get("in") != "query":
                continue
            schema = _repair(parameter.get("schema", {}))
            if schema.get("type") == "object" and parameter.get("explode"):
                # e.g. ``search_params``: Logto's free-form search keys (``search``, ``search.name``, ...)
                operation.free_form_query = True
            else:
                operation.query_params[parameter["name"]] = (schema, OAS30Validator(schema))
        request_body = op.get("requestBody")
        if isinstance(request_body, dict):
            operation.has_body = True
            operation.body_required = bool(request_body.get("required"))
            schema = request_body.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None:
                operation.body_validator = OAS30Validator(_repair(_deref(schema, spec)))
        with self._lock:
            self._operations[key] = operation
        return operation

    def check_request(self, method: str, path: str, query: str, content_type: str | None, body: bytes) -> list[str]:
        """Violations of one Management API request (empty list: it conforms)."""
        method = method.lower()
        template = self._match(path)
        if template is None:
            return [f"{method.upper()} {path}: no such path in the Logto OpenAPI document"]
        operation = self._operation(template, method)
        where = f"{method.upper()} {template}"
        if operation is None:
            return [f"{where}: method not in the Logto OpenAPI document"]
        problems = self._check_query(operation, query, where)
        problems += self._check_body(operation, content_type, body, where)
        return problems

    @staticmethod
    def _check_query(operation: _Operation, query: str, where: str) -> list[str]:
        problems = []
        values: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            values.setdefault(name, []).append(value)
        for name, given in values.items():
            compiled = operation.query_params.get(name)
            if compiled is None:
                if not operation.free_form_query:
                    problems.append(f"{where}: unknown query parameter '{name}'")
                continue
            schema, validator = compiled
            instance: Any = given if len(given) > 1 else given[0]
            if schema.get("type") in ("integer", "number"):
                try:
                    instance = int(given[-1]) if schema["type"] == "integer" else float(given[-1])
                except ValueError:
                    problems.append(f"{where}: query parameter '{name}' is not an {schema['type']}")
                    continue
            elif schema.get("type") == "boolean":
                if given[-1] not in ("true", "false"):
                    problems.append(f"{where}: query parameter '{name}' is not true/false")
                continue
            for error in validator.iter_errors(instance):
                problems.append(f"{where}: query parameter '{name}' fails '{error.validator}'")
        return problems

    @staticmethod
    def _check_body(operation: _Operation, content_type: str | None, body: bytes, where: str) -> list[str]:
        if not body.strip():
            if operation.body_required:
                return [f"{where}: request body is required"]
            return []
        if not operation.has_body:
            return [f"{where}: this operation takes no request body"]
        if not content_type or "application/json" not in content_type.lower():
            return [f"{where}: request body must be sent as application/json"]
        try:
            document = json.loads(body)
        except ValueError:
            return [f"{where}: request body is not valid JSON"]
        if operation.body_validator is None:
            return []
        problems = []
        for error in operation.body_validator.iter_errors(document):
            location = "/".join(str(part) for part in error.absolute_path) or "(root)"
            if error.validator == "required":
                # jsonschema's message names the missing property (from the schema, not the request)
                detail = f": {error.message}"
            elif error.validator in ("type", "minLength", "maxLength", "minimum", "maximum", "minItems"):
                detail = f" ({error.validator_value})"
            else:
                detail = ""
            problems.append(f"{where}: request body at {location} fails '{error.validator}'{detail}")
        return problems

    @staticmethod
    def check_token_request(content_type: str | None, body: bytes, has_basic_auth: bool) -> list[str]:
        """Violations of a ``POST /oidc/token`` (not in the OpenAPI document: RFC 6749 form rules)."""
        where = "POST /oidc/token"
        if not content_type or "application/x-www-form-urlencoded" not in content_type.lower():
            return [f"{where}: body must be application/x-www-form-urlencoded"]
        try:
            fields = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            return [f"{where}: body is not a valid form"]
        problems = []
        names = [name for name, _ in fields]
        for name in sorted(set(names)):
            if name not in TOKEN_FORM_FIELDS:
                problems.append(f"{where}: unknown form field '{name}'")
            if names.count(name) > 1:
                problems.append(f"{where}: form field '{name}' repeated")
        if "grant_type" not in names:
            problems.append(f"{where}: form field 'grant_type' is required")
        if has_basic_auth and "client_secret" in names:
            problems.append(f"{where}: client authenticated both by HTTP Basic and client_secret")
        if not has_basic_auth and "client_id" not in names:
            problems.append(f"{where}: no client authentication (HTTP Basic or client_id/client_secret)")
        return problems


_CONTRACTS: dict[Path, OpenApiContract] = {}
_CONTRACTS_LOCK = threading.Lock()


def shared_contract(spec_path: Path | None = None) -> OpenApiContract:
    """One ``OpenApiContract`` per spec file per process (loading and compiling happen once)."""
    path = (spec_path or openapi_spec_path()).resolve()
    with _CONTRACTS_LOCK:
        contract = _CONTRACTS.get(path)
        if contract is None:
            contract = _CONTRACTS[path] = OpenApiContract(path)
        return contract
