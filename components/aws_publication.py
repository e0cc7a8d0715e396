"""``AwsSecretPublication``: one Secrets Manager secret holding a current value of the stack (boto3).

For a LobeChat deployed elsewhere (ECS, Kubernetes, a platform that reads Secrets Manager): the
stack writes the client secret it rotated (JSON ``{"clientId", "clientSecret", "secretName",
"issuer"}``, the format ``components.aws_rotation`` also reads) or the webhook signing key
(``{"signingKey"}``) into the named secret: created when missing, a new version when the value
changed, nothing when it did not. AWS credentials come from boto3's usual chain (environment,
profile, instance role) on the machine running ``pulumi up``; none is stored in the state.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

INPUT_KEYS = ("secret_name", "region", "endpoint_url", "value")


def _client(props: dict[str, Any]) -> Any:
    import boto3

    return boto3.client("secretsmanager", region_name=props["region"], endpoint_url=props.get("endpoint_url") or None)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class AwsSecretPublicationProvider(ResourceProvider):
    """Creates or versions the secret; ``value_digest`` tells a changed value without reading AWS."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [CheckFailure(k, "must be a non-empty string") for k in ("secret_name", "region")
                    if not isinstance(news.get(k), str) or not news.get(k)]
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("secret_name", "region", "endpoint_url") if olds.get(k) != news.get(k)]
        changed = isinstance(news.get("value"), str) and olds.get("value_digest") != _digest(news["value"])
        return DiffResult(changes=bool(replaces) or changed or not isinstance(news.get("value"), str),
                          replaces=replaces, delete_before_replace=False)

    def _publish(self, props: dict[str, Any]) -> dict[str, Any]:
        client = _client(props)
        try:
            answer = client.put_secret_value(SecretId=props["secret_name"], SecretString=props["value"])
        except client.exceptions.ResourceNotFoundException:
            answer = client.create_secret(
                Name=props["secret_name"], SecretString=props["value"],
                Description="Published by the lobechat-logto Pulumi stack (rotated by its pulumi up)",
            )
        return {**props, "arn": answer["ARN"], "version_id": answer.get("VersionId"), "value_digest": _digest(props["value"])}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._publish(props)
        return CreateResult(outs["arn"], outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._publish(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = _client(props)
        try:
            current = client.get_secret_value(SecretId=props["secret_name"])
        except client.exceptions.ResourceNotFoundException:
            return ReadResult("", {})
        outs = {**props, "value_digest": _digest(current.get("SecretString") or "")}
        return ReadResult(id_, outs, {k: props.get(k) for k in INPUT_KEYS})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        client = _client(props)
        try:
            client.delete_secret(SecretId=props["secret_name"], RecoveryWindowInDays=7)
        except client.exceptions.ResourceNotFoundException:
            pass


def client_secret_document(client_id: str, client_secret: str, secret_name: str, issuer: str) -> str:
    """The published client secret: what ``components.aws_rotation`` reads and writes."""
    return json.dumps({"clientId": client_id, "clientSecret": client_secret, "secretName": secret_name, "issuer": issuer})


class AwsSecretPublication(Resource, module="aws", name="SecretPublication"):
    """The current value of one stack secret in AWS Secrets Manager (``value`` is a Pulumi secret)."""

    arn: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        secret_name: str,
        region: str,
        value: pulumi.Input[str],
        endpoint_url: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"secret_name": secret_name, "region": region, "endpoint_url": endpoint_url,
                 "value": pulumi.Output.secret(value), "arn": None, "version_id": None, "value_digest": None}
        super().__init__(AwsSecretPublicationProvider(), resource_name, props,
                         pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["value"])))
