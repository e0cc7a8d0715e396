"""The stage's Caddy: one container publishing the public ports, its volumes, and its config writers.

- ``<prefix>-caddy``: the pinned Caddy image on the stage network, the public host names as its
  network aliases (so every container reaches LobeChat, the issuer, the admin endpoint and the webhook
  URL through it, with no hosts-file edit and no hairpin NAT), the only container that publishes
  ports. It starts once its config file exists and runs ``caddy run`` on it.
- ``<prefix>-caddy-config`` (a plain volume): the generated config (and certificate files).
- ``<prefix>-caddy-data``: certificates, ACME account keys, the internal CA; protected and kept on the
  host after a destroy (losing it means asking the CA again, and ACME rate limits).
- two one-shot config writers (:mod:`components.front.reload`), in Caddy's network namespace:
  ``front-config-base`` right after Caddy is up (LobeChat routed by its network alias, so
  ``pulumi up`` can call Logto's Management API through the front before LobeChat exists), and
  ``front-config`` once the LobeChat container is healthy (LobeChat routed by that container's name).
  A change of the config replaces only a writer, never Caddy: Caddy reloads gracefully.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import LOBECHAT_CONTAINER_PORT, StageConfig
from components.hardening import SECURITY_OPTS
from components.one_shot import ROLE_LABEL, one_shot_container
from components.front.caddy_config import (
    ADMIN_LISTEN,
    CONFIG_DIR,
    PUBLIC_HTTP_PORT,
    PUBLIC_HTTPS_PORT,
    STORAGE_ROOT,
    Listen,
    Site,
    TlsSettings,
    caddy_config_json,
)
from components.front.reload import RELOAD_SCRIPT, TLS_DIR_IN_CONTAINER, check_reload_exit
from components.front.sites import front_sites, public_host_names

CONFIG_FILE = f"{CONFIG_DIR}/caddy.json"
CADDY_MEMORY_MB = 256
"""Caddy's memory limit (it holds the config, certificates and connection buffers)."""
CONFIG_HASH_LABEL = "lobechat-logto.front-config-sha256"


def start_command(config_file: str = CONFIG_FILE) -> str:
    """Caddy's command: wait for the first config (a writer delivers it), then run it."""
    return f'while [ ! -s "{config_file}" ]; do sleep 0.2; done; exec caddy run --config "{config_file}"'


START_COMMAND = start_command()


def _pem_text(value: str) -> str:
    """A PEM file's text: ends with one line break."""
    return value.rstrip("\n") + "\n"


def tls_settings(config: StageConfig) -> TlsSettings:
    front = config.front
    assert front is not None
    return TlsSettings(mode=front.tls, acme_email=front.acme_email, acme_ca=front.acme_ca)


def render(
    config: StageConfig,
    sites: Sequence[Site],
    *,
    tls: TlsSettings | None = None,
    listen: Listen | None = None,
    admin: str = ADMIN_LISTEN,
    storage_root: str = STORAGE_ROOT,
) -> str:
    """The config the stack loads for ``sites`` (canonical JSON).

    The keyword arguments exist for the tests, which run this config in a real Caddy on 127.0.0.1
    (free ports, a temporary storage, Caddy's internal CA instead of ACME).
    """
    front = config.front
    assert front is not None
    return caddy_config_json(
        sites, tls=tls or tls_settings(config), hsts=front.hsts, listen=listen, admin=admin,
        storage_root=storage_root, grace_period_s=front.drain_seconds,
    )


def published_ports(config: StageConfig, sites: Sequence[Site]) -> list[docker.ContainerPortArgs]:
    """80/443 for https names (to the public listeners), each public ``*.localhost`` site's own port."""
    front = config.front
    assert front is not None
    ports: list[docker.ContainerPortArgs] = []
    if any(s.scheme == "https" for s in sites):
        ports.append(docker.ContainerPortArgs(internal=PUBLIC_HTTP_PORT, external=front.http_port, ip=front.bind_address))
        ports.append(docker.ContainerPortArgs(internal=PUBLIC_HTTPS_PORT, external=front.https_port, ip=front.bind_address))
    for port in sorted({s.port for s in sites if s.scheme == "http" and s.public}):
        ports.append(docker.ContainerPortArgs(internal=port, external=port, ip=front.bind_address))
    return ports


@dataclass(frozen=True)
class _Writer:
    container: docker.Container
    done: pulumi.Output[str]


class CaddyFront(pulumi.ComponentResource):
    """Caddy in front of LobeChat and Logto (``front.mode: caddy``).

    Create it before LobeChat (``base_ready`` gates the Logto resources), then call
    :meth:`route_lobechat` with the LobeChat container.
    """

    def __init__(
        self,
        resource_name: str,
        *,
        config: StageConfig,
        network_name: pulumi.Input[str],
        logto_container: docker.Container | None,
        storage_host: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:front:CaddyFront", resource_name, None, opts)
        front = config.front
        assert front is not None and front.is_caddy
        self._config = config
        self._name = resource_name
        limits = getattr(config, "memory_limits", None)
        self._one_shot_memory_mb = getattr(limits, "one_shot", 256)
        prefix = config.resource_prefix
        child = pulumi.ResourceOptions(parent=self)
        self.image = docker.RemoteImage(f"{resource_name}-image", name=front.image, keep_locally=True, opts=child)
        self.config_volume = docker.Volume(f"{resource_name}-config-volume", name=f"{prefix}-caddy-config", opts=child)
        self.data_volume = docker.Volume(
            f"{resource_name}-data-volume",
            name=f"{prefix}-caddy-data",
            # Certificates and ACME account keys: asking the CA again hits its rate limits.
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        # The sites as the final config will have them (for aliases and ports; upstreams do not matter).
        self._storage_host = storage_host
        shape = front_sites(config, lobechat_upstream=f"lobechat:{LOBECHAT_CONTAINER_PORT}", logto_upstream_host="logto",
                            storage_upstream_host=storage_host)
        self.host_names = public_host_names(shape)
        self.container = docker.Container(
            resource_name,
            name=f"{prefix}-caddy",
            image=self.image.image_id,
            entrypoints=["sh", "-c", START_COMMAND],
            ports=published_ports(config, shape),
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=["front", *self.host_names])
            ],
            volumes=[
                docker.ContainerVolumeArgs(volume_name=self.config_volume.name, container_path=CONFIG_DIR, read_only=False),
                docker.ContainerVolumeArgs(volume_name=self.data_volume.name, container_path="/data"),
            ],
            envs=["XDG_DATA_HOME=/data", "XDG_CONFIG_HOME=/config"],
            # The image declares VOLUME /config: without a mount each container would leave an
            # anonymous volume (Caddy's autosave, which the generated config turns off).
            tmpfs={"/config": "rw,size=1m"},
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "wget", "-q", "-O", "/dev/null", f"http://{ADMIN_LISTEN}/config/"],
                interval="10s", timeout="3s", retries=3, start_period="30s",
            ),
            restart="unless-stopped",
            security_opts=SECURITY_OPTS,
            memory=CADDY_MEMORY_MB,
            # Caddy waits for its first config, which a writer delivers after this container exists.
            wait=False,
            # Caddy finishes requests in flight before it exits (its grace period).
            stop_timeout=front.drain_seconds,
            # Fixed name and fixed host ports: a new Caddy can only start once the old one is gone.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self._logto_host = logto_container.name if logto_container is not None else None
        base = self._writer(
            f"{resource_name}-config-base",
            lobechat_upstream=pulumi.Output.from_input(f"lobechat:{LOBECHAT_CONTAINER_PORT}"),
            drain_seconds=0,
            # Only Logto's name is needed (Caddy retries until Logto answers): the front comes up
            # while Postgres and Logto start.
            depends_on=[],
            previous=None,
        )
        self._base = base
        self.base_writer = base.container
        self.base_ready = base.done
        """Resolves once the front routes Logto (gate the Management API calls on it)."""
        self.register_outputs({"container_name": self.container.name})

    def route_lobechat(
        self, container: docker.Container, ready: pulumi.Input[pulumi.Resource]
    ) -> pulumi.Output[str]:
        """Route LobeChat to ``container`` once ``ready`` resolved and drain the container it replaces."""
        upstream = pulumi.Output.all(container.name, ready).apply(lambda v: f"{v[0]}:{LOBECHAT_CONTAINER_PORT}")
        front = self._config.front
        assert front is not None
        writer = self._writer(
            f"{self._name}-config",
            lobechat_upstream=upstream,
            drain_seconds=front.drain_seconds,
            depends_on=[container, ready],
            previous=self._base,
        )
        self.config_loaded = writer.done
        return writer.done

    def _writer(
        self,
        name: str,
        *,
        lobechat_upstream: pulumi.Output[str],
        drain_seconds: int,
        depends_on: Sequence[pulumi.Input[pulumi.Resource]],
        previous: _Writer | None,
    ) -> _Writer:
        config = self._config
        front = config.front
        assert front is not None
        logto_host = self._logto_host if self._logto_host is not None else pulumi.Output.from_input(None)

        def build(values: list) -> dict[str, str]:
            lobe, logto = values[0], values[1]
            sites = front_sites(config, lobechat_upstream=lobe, logto_upstream_host=logto,
                                storage_upstream_host=self._storage_host)
            text = render(config, sites)
            return {
                "config": text,
                "upstreams": " ".join(sorted({s.upstream for s in sites})),
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
            }

        rendered = pulumi.Output.all(lobechat_upstream, logto_host, *( [previous.done] if previous else [])).apply(build)
        plain_env = rendered.apply(
            lambda r: [
                f"FRONT_CONFIG={r['config']}",
                f"FRONT_UPSTREAMS={r['upstreams']}",
                f"FRONT_DRAIN_SECONDS={drain_seconds}",
                f"FRONT_ADMIN={ADMIN_LISTEN}",
                f"FRONT_DIR={CONFIG_DIR}",
            ]
        )
        envs: pulumi.Input[list[str]] = plain_env
        uploads: list[docker.ContainerUploadArgs] = []
        if front.tls == "files" and front.certificate is not None and front.private_key is not None:
            # As files, not in the environment (which `docker inspect` shows): the script copies them
            # into the config volume and deletes them.
            envs = plain_env.apply(lambda e: [*e, f"FRONT_TLS_DIR={TLS_DIR_IN_CONTAINER}"])
            uploads = [
                docker.ContainerUploadArgs(
                    file=f"{TLS_DIR_IN_CONTAINER}/{file_name}",
                    content=pulumi.Output.secret(pulumi.Output.from_input(content).apply(_pem_text)),
                    permissions="0600",
                )
                for file_name, content in (("certificate.pem", front.certificate), ("private-key.pem", front.private_key))
            ]
        labels: dict[str, pulumi.Input[str]] = {
            CONFIG_HASH_LABEL: rendered.apply(lambda r: r["sha256"]),
            ROLE_LABEL: name,
        }
        if previous is not None:
            # Whenever the base config is loaded again, the final one is loaded after it.
            labels["lobechat-logto.after"] = previous.done
        container = one_shot_container(
            name,
            image=self.image.image_id,
            entrypoints=["sh", "-c", RELOAD_SCRIPT],
            envs=envs,
            uploads=uploads or None,
            network_name=None,
            network_mode=self.container.id.apply(lambda cid: f"container:{cid}"),
            volumes=[docker.ContainerVolumeArgs(volume_name=self.config_volume.name, container_path=CONFIG_DIR)],
            # The image's VOLUME paths: a tmpfs each, so no run leaves anonymous volumes (and what
            # `caddy validate` provisions there, e.g. an internal CA, is thrown away).
            tmpfs={"/data": "rw,size=4m", "/config": "rw,size=1m"},
            labels=labels,
            memory_mb=self._one_shot_memory_mb,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.container, *depends_on, *([previous.container] if previous else [])]
            ),
        )
        done = pulumi.Output.all(
            container.exit_code, container.container_logs, container.name, container.urn, rendered
        ).apply(lambda v: (check_reload_exit(v[0], v[1], container=v[2] or "", urn=v[3] or ""), v[4]["sha256"])[1])
        return _Writer(container=container, done=done)
