"""The resource wrappers under Pulumi mocks: type tokens, inputs, markers, secretness."""

from __future__ import annotations

import pulumi

from components.logto_resources import (
    LogtoApplication,
    LogtoApplicationSecret,
    LogtoConnectionArgs,
    LogtoWebhook,
)
from tests.pulumi_mocks import (
    LOGTO_APPLICATION,
    LOGTO_APPLICATION_SECRET,
    LOGTO_WEBHOOK,
    ProgramRun,
    run_program,
)

M2M_SECRET = "m2m-secret-for-mocks"


def program() -> None:
    connection = LogtoConnectionArgs("http://auth.localhost:3001", "bootstrap-m2m", M2M_SECRET)
    app = LogtoApplication(
        "lobechat-app",
        connection=connection,
        name="LobeChat",
        redirect_uris=["http://lobe.localhost:3210/api/auth/callback/logto"],
        post_sign_out_redirect_uris=["http://lobe.localhost:3210/"],
        cors_allowed_origins=["http://lobe.localhost:3210"],
        opts=pulumi.ResourceOptions(additional_secret_outputs=["name"]),
    )
    secret = LogtoApplicationSecret(
        "lobechat-rotation", connection=connection, application_id=app.app_id, secret_name="rotation-1"
    )
    hook = LogtoWebhook(
        "lobechat-user-sync", connection=connection, name="LobeChat user sync",
        url="http://lobe.localhost:3210/api/webhooks/logto",
    )
    pulumi.export("client_id", app.client_id)
    pulumi.export("client_secret", app.client_secret)
    pulumi.export("named_secret", secret.value)
    pulumi.export("hook_id", hook.hook_id)
    pulumi.export("signing_key", hook.signing_key)


def run() -> ProgramRun:
    return run_program("dev", {}, program=program)


def test_each_resource_has_its_own_type_token() -> None:
    recorded = run()
    assert [r.name for r in recorded.of_type(LOGTO_APPLICATION)] == ["lobechat-app"]
    assert [r.name for r in recorded.of_type(LOGTO_APPLICATION_SECRET)] == ["lobechat-rotation"]
    assert [r.name for r in recorded.of_type(LOGTO_WEBHOOK)] == ["lobechat-user-sync"]


def test_application_inputs_carry_project_stack_and_logical_name() -> None:
    app = run().one(LOGTO_APPLICATION, "lobechat-app")
    assert (app.plain("project"), app.plain("stack"), app.plain("resource_name")) == ("lobechat-logto", "dev", "lobechat-app")
    assert app.plain("app_type") == "Traditional"


def test_m2m_secret_input_is_secret_on_every_resource() -> None:
    recorded = run()
    for typ in (LOGTO_APPLICATION, LOGTO_APPLICATION_SECRET, LOGTO_WEBHOOK):
        for resource in recorded.of_type(typ):
            assert resource.is_secret("logto_client_secret")


def test_secret_outputs_are_declared_and_callers_own_entries_kept() -> None:
    recorded = run()
    app = recorded.one(LOGTO_APPLICATION, "lobechat-app")
    assert {"client_secret", "logto_client_secret", "name"} <= set(app.additional_secret_outputs)
    assert "value" in recorded.one(LOGTO_APPLICATION_SECRET, "lobechat-rotation").additional_secret_outputs
    assert "signing_key" in recorded.one(LOGTO_WEBHOOK, "lobechat-user-sync").additional_secret_outputs


def test_secret_outputs_are_pulumi_secrets_in_the_program() -> None:
    recorded = run()
    assert {"client_secret", "named_secret", "signing_key"} <= recorded.secret_outputs
    assert "client_id" not in recorded.secret_outputs


def test_webhook_defaults_to_user_data_updated_enabled() -> None:
    hook = run().one(LOGTO_WEBHOOK, "lobechat-user-sync")
    assert hook.plain("events") == ["User.Data.Updated"]
    assert hook.plain("enabled") is True
