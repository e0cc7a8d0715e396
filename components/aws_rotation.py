"""AWS Secrets Manager: rotation of LobeChat's Logto client secret for a LobeChat deployed elsewhere
(ECS, Kubernetes, a platform that reads Secrets Manager), and publication of the stack's secrets.

The rotation handler follows Secrets Manager's four-step contract (the Lambda is invoked with
``SecretId``, ``ClientRequestToken`` and ``Step``):

- ``createSecret``: unless the version ``ClientRequestToken`` already has a value, create a named
  secret ``aws-<ClientRequestToken>`` in Logto (Logto generates the value; the name makes a rerun
  find it instead of making another) and store it as that version, staged ``AWSPENDING``.
- ``setSecret``: the secret already exists in Logto (Logto made it); check that it still does.
- ``testSecret``: authenticate at Logto's token endpoint with the pending secret (a refresh-token
  grant with a dummy token: ``invalid_grant`` means the client authenticated, ``invalid_client``
  that it did not). A failure stops the rotation here: ``AWSCURRENT`` and the old secret are untouched.
- ``finishSecret``: move ``AWSCURRENT`` to the new version (Secrets Manager moves ``AWSPREVIOUS`` to
  the old one), then delete in Logto every ``aws-*`` secret, and every secret named by an older
  version, that is neither current nor previous: at most two valid secrets after any number of
  rotations, and consumers that still read the previous version keep working until the next rotation.
  (Rotate an application either this way or with the stack's ``rotation`` policy, not both.)

Every step is idempotent on the ``ClientRequestToken``: a rerun after a crash between any two steps
converges. The secret's value is JSON: ``{"clientId", "clientSecret", "secretName", "issuer"}``.

The handler's settings (Lambda environment): ``LOGTO_ENDPOINT`` (where the Management API and the
token endpoint are), ``LOGTO_MANAGEMENT_RESOURCE`` (default ``https://default.logto.app/api``),
``LOGTO_M2M_SECRET_ID`` (a Secrets Manager secret holding ``{"clientId", "clientSecret"}`` of an
M2M application with the Management API role).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import requests

from components.logto_api import LogtoConnection, LogtoError, ManagementApi, SELF_HOSTED_RESOURCE

PREFIX = "aws-"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


class RotationStepError(RuntimeError):
    """A rotation step failed; the message names the step and the secret (never a secret value)."""

    def __init__(self, step: str, secret_id: str, reason: str) -> None:
        super().__init__(f"{step} of {secret_id}: {reason}")
        self.step = step


@dataclass(frozen=True)
class Settings:
    """Where Logto is and which M2M credential manages it (read from the Lambda environment)."""

    logto_endpoint: str
    m2m_secret_id: str
    management_resource: str = SELF_HOSTED_RESOURCE
    timeout: float = 10.0

    @classmethod
    def from_environment(cls) -> Settings:
        missing = [name for name in ("LOGTO_ENDPOINT", "LOGTO_M2M_SECRET_ID") if not os.environ.get(name)]
        if missing:
            raise ValueError(f"the rotation handler needs the environment variables {', '.join(missing)}")
        return cls(
            logto_endpoint=os.environ["LOGTO_ENDPOINT"].rstrip("/"),
            m2m_secret_id=os.environ["LOGTO_M2M_SECRET_ID"],
            management_resource=os.environ.get("LOGTO_MANAGEMENT_RESOURCE") or SELF_HOSTED_RESOURCE,
        )


def handler(event: dict[str, Any], context: Any = None, *, client: Any = None, settings: Settings | None = None) -> None:
    """The Lambda entry point (``components.aws_rotation.handler``)."""
    step = event.get("Step")
    secret_id = event.get("SecretId")
    token = event.get("ClientRequestToken")
    if step not in STEPS or not secret_id or not token:
        raise ValueError(f"not a Secrets Manager rotation event (Step {step!r}); expected one of {', '.join(STEPS)}")
    if client is None:
        import boto3

        client = boto3.client("secretsmanager")
    rotation = _Rotation(client, settings or Settings.from_environment(), secret_id, token)
    try:
        getattr(rotation, step)()
    except RotationStepError:
        raise
    except LogtoError as exc:
        raise RotationStepError(step, secret_id, f"Logto: {exc}") from None


class _Rotation:
    def __init__(self, client: Any, settings: Settings, secret_id: str, token: str) -> None:
        self.client = client
        self.settings = settings
        self.secret_id = secret_id
        self.token = token

    # --- Secrets Manager -------------------------------------------------------------------------

    def _stages(self) -> dict[str, list[str]]:
        return self.client.describe_secret(SecretId=self.secret_id).get("VersionIdsToStages") or {}

    def _value(self, **version: str) -> dict[str, Any] | None:
        try:
            answer = self.client.get_secret_value(SecretId=self.secret_id, **version)
        except self.client.exceptions.ResourceNotFoundException:
            return None
        try:
            value = json.loads(answer.get("SecretString") or "")
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _version_of(self, stage: str) -> str | None:
        return next((v for v, stages in self._stages().items() if stage in stages), None)

    def _require(self, step: str, value: dict[str, Any] | None, what: str) -> dict[str, Any]:
        if value is None or not value.get("clientId") or not value.get("clientSecret"):
            raise RotationStepError(step, self.secret_id, f"{what} has no JSON value with clientId and clientSecret")
        return value

    # --- Logto -------------------------------------------------------------------------------------

    def _api(self) -> ManagementApi:
        m2m = self.client.get_secret_value(SecretId=self.settings.m2m_secret_id)
        credentials = json.loads(m2m["SecretString"])
        return ManagementApi(LogtoConnection(
            endpoint=self.settings.logto_endpoint, client_id=credentials["clientId"],
            client_secret=credentials["clientSecret"], resource=self.settings.management_resource,
            timeout=self.settings.timeout,
        ))

    def _logto_secret(self, api: ManagementApi, app_id: str, name: str) -> dict[str, Any] | None:
        return next((s for s in api.applications.list_secrets(app_id) if s.get("name") == name), None)

    # --- the four steps ----------------------------------------------------------------------------

    def createSecret(self) -> None:  # noqa: N802 - the step's name
        current = self._require("createSecret", self._value(VersionStage="AWSCURRENT"), "AWSCURRENT")
        if self._value(VersionId=self.token) is not None:
            return  # this version was already created (a rerun)
        api = self._api()
        app_id, name = current["clientId"], PREFIX + self.token
        secret = self._logto_secret(api, app_id, name)
        if secret is None:
            try:
                secret = api.applications.create_secret(app_id, name)
            except LogtoError as exc:
                secret = self._logto_secret(api, app_id, name) if exc.may_have_reached_server or exc.status == 422 else None
                if secret is None:
                    raise
        value = {**current, "clientSecret": secret["value"], "secretName": name}
        self.client.put_secret_value(
            SecretId=self.secret_id, ClientRequestToken=self.token, SecretString=json.dumps(value),
            VersionStages=["AWSPENDING"],
        )

    def setSecret(self) -> None:  # noqa: N802
        pending = self._require("setSecret", self._value(VersionId=self.token), f"version {self.token}")
        if self._logto_secret(self._api(), pending["clientId"], pending.get("secretName") or "") is None:
            raise RotationStepError(
                "setSecret", self.secret_id,
                f"the Logto secret {pending.get('secretName')!r} of this version is gone; cancel this rotation "
                "(aws secretsmanager cancel-rotate-secret) and rotate again",
            )

    def testSecret(self) -> None:  # noqa: N802
        pending = self._require("testSecret", self._value(VersionId=self.token), f"version {self.token}")
        answer = requests.post(
            f"{self.settings.logto_endpoint}/oidc/token", timeout=self.settings.timeout,
            data={"grant_type": "refresh_token", "refresh_token": "rotation-test",
                  "client_id": pending["clientId"], "client_secret": pending["clientSecret"]},
        )
        try:
            error = answer.json().get("error")
        except ValueError:
            error = None
        if answer.status_code != 400 or error != "invalid_grant":
            raise RotationStepError(
                "testSecret", self.secret_id,
                f"Logto's token endpoint did not accept the new secret (HTTP {answer.status_code}, {error or 'no error code'}); "
                "AWSCURRENT is unchanged",
            )

    def finishSecret(self) -> None:  # noqa: N802
        current_version = self._version_of("AWSCURRENT")
        if current_version != self.token:
            self.client.update_secret_version_stage(
                SecretId=self.secret_id, VersionStage="AWSCURRENT", MoveToVersionId=self.token,
                RemoveFromVersionId=current_version,
            )
        keep: set[str] = set()
        retired: set[str] = set()
        app_id = None
        versions = self.client.list_secret_version_ids(SecretId=self.secret_id, IncludeDeprecated=True)
        for version in versions.get("Versions") or []:
            value = self._value(VersionId=version["VersionId"]) or {}
            name = value.get("secretName") or ""
            labels = version.get("VersionStages") or []
            if "AWSCURRENT" in labels or "AWSPREVIOUS" in labels:
                app_id = app_id or value.get("clientId")
                keep.add(name)
            elif name:
                retired.add(name)  # a version older than AWSPREVIOUS: nobody should hold it any more
        if app_id is None:
            return
        api = self._api()
        for secret in api.applications.list_secrets(app_id):
            name = secret.get("name") or ""
            if name not in keep and (name.startswith(PREFIX) or name in retired):
                api.applications.delete_secret(app_id, name)
