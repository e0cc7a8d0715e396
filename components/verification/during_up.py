"""Verification at the end of ``pulumi up``: the in-network probe container and the checks.

`IssuerProbe` is a one-shot container of LobeChat's image on the stage network (attached, logs
kept) that fetches the discovery URL the way LobeChat's server does. It runs again whenever the
LobeChat container is replaced (its id is a label), the image or the issuer changes.

`verify_after_up` runs every check once everything is up (it waits on the LobeChat container and the
probe) and returns the report's summary as an Output (the stack output ``verification``). With
``onFailure: fail`` a failed check raises `VerificationFailed`, which fails ``pulumi up`` with the
list of failed checks and their fixes; with ``warn`` they are logged as warnings. Never during a
preview (nothing is deployed yet), and the report never holds a secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi_docker as docker

from components.config.verification import VerificationConfig
from components.network import host_gateway_entries
from components.one_shot import ROLE_LABEL, one_shot_container
from components.verification.checks import run_verification
from components.verification.probe import NODE_IN_LOBECHAT_IMAGE, parse_probe_output, probe_command
from components.verification.report import VerificationFailed
from components.verification.target import from_stack_outputs

PROBE_ROLE_LABEL = ROLE_LABEL
PROBE_ROLE = "issuer-probe"
PROBE_MIN_MEMORY_MB = 256
"""The probe runs Node: never below this, whatever ``memoryLimits.oneShot`` says."""
PROBE_TARGET_LABEL = "lobechat-logto.probe-target"

_LOG_FRAME_HEADER_BYTES = 8


class IssuerProbe(pulumi.ComponentResource):
    """Fetches ``discovery_url`` once from a container of LobeChat's image on the stage network.

    Outputs: ``logs`` (the container's output, holding the probe's result line).
    """

    def __init__(
        self,
        name: str,
        *,
        image: pulumi.Input[str],
        network_name: pulumi.Input[str],
        discovery_url: str,
        rerun_when: pulumi.Input[str],
        proxied_host_names: Sequence[str] = (),
        memory_mb: int = 256,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:verification:IssuerProbe", name, None, opts)
        depends_on = opts.depends_on if opts is not None else None
        # Hardened and bounded like every one-shot step (it had neither before; node's fetch needs little).
        self.container = one_shot_container(
            f"{name}-run",
            image=image,
            entrypoints=[NODE_IN_LOBECHAT_IMAGE],
            command=probe_command(discovery_url),
            network_name=network_name,
            hosts=host_gateway_entries(proxied_host_names),
            labels={PROBE_ROLE_LABEL: PROBE_ROLE, PROBE_TARGET_LABEL: rerun_when},
            memory_mb=memory_mb,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        self.logs = self.container.container_logs
        self.register_outputs({"logs": self.logs})


Reporter = Callable[[str], None]


def _warn(message: str) -> None:
    pulumi.log.warn(message)


def _info(message: str) -> None:
    pulumi.log.info(message)


def evaluate(
    stage: str,
    outputs: Mapping[str, Any],
    probe_logs: str | None,
    config: VerificationConfig,
    *,
    probe_ran: bool,
    now_ms: Callable[[], int] | None = None,
    warn: Reporter = _warn,
    info: Reporter = _info,
) -> str:
    """Run the checks on resolved values; raise `VerificationFailed` (``fail``) or warn (``warn``)."""
    started = time.monotonic()
    target = from_stack_outputs(stage, outputs)
    probe: Any
    if not probe_ran:
        probe = "verification.inNetworkProbe is off"
    else:
        probe = parse_probe_output(probe_logs) or "the probe container printed no result (see `docker logs` of the probe)"
    kwargs: dict[str, Any] = {"expiry_warning_days": config.secret_expiry_warning_days}
    if now_ms is not None:
        kwargs["now_ms"] = now_ms
    report = run_verification(target, probe=probe, **kwargs)
    elapsed = time.monotonic() - started
    if not report.ok:
        if config.on_failure == "fail":
            raise VerificationFailed(report)
        warn(report.failure_text() + "\n(verification.onFailure is warn: the deployment stands)")
    else:
        info(f"{report.summary()} in {elapsed:.1f}s")
    return report.summary()


def verify_after_up(
    stage: str,
    *,
    outputs: Mapping[str, pulumi.Input[Any]],
    probe: IssuerProbe | None,
    wait_for: Sequence[pulumi.Input[Any]],
    config: VerificationConfig,
) -> pulumi.Output[str]:
    """The ``verification`` stack output: the report's summary, computed after everything is up."""
    if pulumi.runtime.is_dry_run():
        return pulumi.Output.from_input("verification runs at the end of `pulumi up`, not in a preview")
    names = list(outputs)
    probe_logs = probe.logs if probe is not None else None
    return pulumi.Output.all(probe_logs, *wait_for, *(outputs[n] for n in names)).apply(
        lambda values: evaluate(
            stage,
            dict(zip(names, values[1 + len(wait_for):])),
            values[0],
            config,
            probe_ran=probe is not None,
        )
    )


def lobechat_check_url(config: Any) -> str:
    """Where this machine reaches LobeChat: ``verification.lobechatCheckUrl``, else the published port
    on 127.0.0.1 for a ``*.localhost`` URL (the OS resolver may not resolve it), else ``lobechatUrl``."""
    if config.verification.lobechat_check_url:
        return config.verification.lobechat_check_url
    url, publish = config.lobechat_url, config.publish
    if url.is_localhost and publish.enabled:
        address = "127.0.0.1" if publish.bind_address in ("0.0.0.0", "127.0.0.1") else publish.bind_address
        if ":" in address and not address.startswith("["):
            address = f"[{address}]"
        return f"{url.scheme}://{address}:{publish.lobechat_port}"
    return url.url


def target_output(
    config: Any,
    *,
    management_endpoint: str,
    management_client_id: pulumi.Input[str],
    management_client_secret: pulumi.Input[str],
    management_resource: str,
    application_id: pulumi.Input[str],
    webhook_id: pulumi.Input[str] | None,
    network_name: pulumi.Input[str],
    webhook_url: pulumi.Input[str] | None = None,
) -> pulumi.Output[dict[str, Any]]:
    """The ``verificationTarget`` stack output (secret: it holds the M2M credential)."""
    return pulumi.Output.secret(
        pulumi.Output.all(
            management_client_id, management_client_secret, application_id, webhook_id, network_name, webhook_url
        ).apply(
            lambda v: {
                "generation": config.generation,
                "logtoUrl": config.logto.api_endpoint,
                "lobechatUrl": lobechat_check_url(config),
                "management": {"endpoint": management_endpoint, "clientId": v[0], "clientSecret": v[1],
                               "resource": management_resource},
                "applicationId": v[2],
                "webhookId": v[3],
                # Where the hook delivers: ``<lobechatUrl>/api/webhooks/logto``, or with webhook-key
                # rotation the key generation's in-network alias (None: derive it from lobechatUrl).
                "webhookUrl": v[5],
                "network": v[4],
                "lobechatImage": config.lobechat_image,
                "proxiedHostNames": list(config.proxied_host_names),
                "dockerHost": config.docker_host,
            }
        )
    )


def stage_verification(
    config: Any,
    *,
    parent: pulumi.Resource,
    target: pulumi.Output[dict[str, Any]],
    environment: pulumi.Output[dict[str, str]],
    lobechat_container: docker.Container,
    lobechat_ready: pulumi.Input[str],
    lobechat_image_id: pulumi.Input[str],
    network_name: pulumi.Input[str],
) -> pulumi.Output[str] | None:
    """The probe (when on) and the ``verification`` output; None when verification is off."""
    settings = config.verification
    if not settings.enabled:
        return None
    probe = None
    if settings.in_network_probe:
        probe = IssuerProbe(
            "lobechat-issuer-probe",
            image=lobechat_image_id,
            network_name=network_name,
            discovery_url=config.logto.issuer + "/.well-known/openid-configuration",
            rerun_when=lobechat_container.id,
            proxied_host_names=config.proxied_host_names,
            memory_mb=max(PROBE_MIN_MEMORY_MB, config.memory_limits.one_shot),
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[lobechat_container]),
        )
    return verify_after_up(
        config.stack,
        outputs={"lobechatUrl": config.urls.app_url, "lobechatEnvironment": environment, "verificationTarget": target},
        probe=probe,
        # After LobeChat answers (its readiness wait), not merely after its container was created.
        wait_for=[lobechat_container.id, lobechat_ready],
        config=settings,
    )
