"""The ``storage`` section: where LobeChat keeps uploaded files (S3-compatible object storage).

``storage.mode``:

- ``container``: the stack runs an S3 server (RustFS, pinned) on the stage network, with a protected
  data volume and generated root credentials, and creates LobeChat's bucket in it;
- ``external``: AWS S3, Cloudflare R2 or any S3 endpoint; the stack creates (or adopts) the bucket with
  the credentials from secret config (``storageAccessKeyId`` / ``storageSecretAccessKey``);
- ``none`` (the default, so existing stages do not change): no storage; LobeChat runs without file
  uploads, knowledge base and image input, unless its S3 variables come through ``extraEnv`` as before.

The loader calls :func:`read_storage` once; this module owns every ``storage.*`` key and the S3
variables' names, so ``extraEnv`` cannot set them behind the stack's back when storage is on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi

if TYPE_CHECKING:
    from components.config.errors import Problems
    from components.config.sources import ConfigSource
    from components.config.stage import Origin, PublishConfig

STORAGE_IMAGE = "rustfs/rustfs:1.0.0"
"""Pinned S3 server for ``storage.mode: container`` (Apache-2.0; what LobeChat 2.x's compose runs)."""

STORAGE_CONTAINER_PORT = 9000
"""Port RustFS serves the S3 API on inside its container (unless a *.localhost URL names another)."""

DEFAULT_BUCKET = "lobechat"
DEFAULT_REGION = "us-east-1"
DEFAULT_FILE_PATH = "files"
"""LobeChat's ``NEXT_PUBLIC_S3_FILE_PATH`` default: every upload's key starts with it."""

STORAGE_SECRET_KEYS = (
    "storageAccessKeyId",
    "storageSecretAccessKey",
    "storageLobechatAccessKeyId",
    "storageLobechatSecretAccessKey",
)
"""Top-level secret keys of this section (external mode)."""

KEYS = frozenset({"storage", *STORAGE_SECRET_KEYS})
"""Every top-level key this section reads."""

S3_ENV_NAMES = frozenset(
    {
        "S3_ENDPOINT",
        "S3_BUCKET",
        "S3_REGION",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "S3_PUBLIC_DOMAIN",
        "S3_ENABLE_PATH_STYLE",
        "S3_SET_ACL",
        "S3_ACCESS_KEY",
    }
)
"""LobeChat's S3 variables the stack sets itself when ``storage.mode`` is not ``none``."""

_FIELDS = {
    "mode", "bucket", "region", "endpoint", "publicEndpoint", "apiEndpoint", "publicDomain",
    "pathStyle", "publicRead", "image", "publishPort", "adoptExisting", "lobechatKey",
}
_MODES = ("container", "external", "none")

# S3's bucket naming rules (general purpose buckets): 3-63 characters, lower-case letters, digits, '.'
# and '-', starting and ending with a letter or digit, no '..', not an IP address, none of the
# reserved prefixes and suffixes.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")


def bucket_name_problem(name: Any) -> str | None:
    """Why S3 would refuse ``name`` as a bucket name, or None when it is valid."""
    if not isinstance(name, str):
        return "must be a string"
    if not _BUCKET.match(name):
        return (
            "must be 3-63 characters of lower-case letters, digits, '.' and '-', starting and ending "
            "with a letter or digit (S3's bucket naming rules)"
        )
    if ".." in name or ".-" in name or "-." in name:
        return "must not contain '..', '.-' or '-.' (S3's bucket naming rules)"
    if _IP.match(name):
        return "must not look like an IP address (S3's bucket naming rules)"
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return "uses a prefix or suffix S3 reserves (xn--, sthree-, -s3alias, --ol-s3, ...)"
    return None


@dataclass(frozen=True)
class StorageConfig:
    """LobeChat's file storage for one stage (``storage.*``).

    Attributes:
        mode: ``container``, ``external`` or ``none``.
        bucket: the bucket LobeChat keeps its files in.
        region: the S3 region (``S3_REGION``); RustFS and R2 accept any (R2: ``auto``).
        endpoint: the S3 endpoint LobeChat and the browser use (``S3_ENDPOINT``); presigned URLs are
            signed for its host, so it is the public origin. None only for mode ``none``.
        api_endpoint: where this program (on the operator's machine) calls the S3 API.
        public_domain: ``S3_PUBLIC_DOMAIN`` (the origin files are served from).
        path_style: ``S3_ENABLE_PATH_STYLE`` (``<endpoint>/<bucket>/<key>`` instead of a bucket host).
        public_read: objects under the file path are world-readable (``S3_SET_ACL=1``); off by default,
            LobeChat then hands out presigned URLs.
        image: the S3 server image (container mode).
        container_port: the port the server listens on inside its container (container mode).
        publish_port: host port the server is published on (container mode, when ``publish`` is on).
        adopt_existing: take over a bucket that exists without this stack's marker.
        access_key_id / secret_access_key: the credentials the stack manages the bucket with (external).
        lobechat_access_key_id / lobechat_secret_access_key: a narrower key LobeChat uses instead
            (external; optional, defaults to the managing credentials).
        lobechat_key: ``shared`` (LobeChat uses the managing or the configured LobeChat key) or
            ``iam`` (external AWS S3: the stack creates an IAM user whose key may only use the bucket).
    """

    mode: str = "none"
    bucket: str = DEFAULT_BUCKET
    region: str = DEFAULT_REGION
    endpoint: str | None = None
    api_endpoint: str | None = None
    public_domain: str | None = None
    public_host: str | None = None
    public_host_is_localhost: bool = False
    path_style: bool = True
    public_read: bool = False
    image: str = STORAGE_IMAGE
    container_port: int = STORAGE_CONTAINER_PORT
    publish_port: int = STORAGE_CONTAINER_PORT
    adopt_existing: bool = False
    access_key_id: pulumi.Input[str] | None = None
    secret_access_key: pulumi.Input[str] | None = None
    lobechat_access_key_id: pulumi.Input[str] | None = None
    lobechat_secret_access_key: pulumi.Input[str] | None = None
    lobechat_key: str = "shared"

    @property
    def enabled(self) -> bool:
        """True unless ``storage.mode`` is ``none``."""
        return self.mode != "none"

    @property
    def public_endpoint(self) -> str | None:
        """The storage's public origin (browser and LobeChat), for the front door's route."""
        return self.endpoint


STORAGE_NONE = StorageConfig()


def read_storage(
    source: ConfigSource,
    problems: Problems,
    stack: str,
    require_https: bool,
    publish: PublishConfig | None,
) -> StorageConfig:
    """Read and check every ``storage.*`` key; problems go to ``problems`` under their full key."""
    # Imported here: fields imports stage, which imports this module for StorageConfig.
    from components.config.fields import parse_bool as _parse_bool
    from components.config.fields import parse_origin as _origin
    from components.config.fields import pinned_image as _pinned_image
    from components.config.fields import read_object as _object
    from components.config.fields import unknown_fields as _unknown_fields

    obj = _object(source, problems, "storage")
    _unknown_fields(problems, "storage", obj, _FIELDS)
    mode = str(obj.get("mode", "none"))
    if mode not in _MODES:
        problems.add(
            "storage.mode",
            "must be \"container\" (the stack runs an S3 server), \"external\" (AWS S3, Cloudflare R2 or "
            "another S3 endpoint) or \"none\" (no file uploads)",
        )
        return STORAGE_NONE
    if mode == "none":
        extra = sorted(set(obj) - {"mode"})
        if extra:
            problems.add(f"storage.{extra[0]}", "only applies when storage.mode is \"container\" or \"external\"; remove it or set storage.mode")
        for key in STORAGE_SECRET_KEYS:
            if source.peek_secret(key) is not None:
                problems.add(key, "only applies when storage.mode is \"external\"; remove it or set storage.mode")
        return STORAGE_NONE

    _refuse_s3_extra_env(source, problems, mode)

    bucket = obj.get("bucket", DEFAULT_BUCKET if mode == "container" else None)
    if bucket is None:
        problems.add(
            "storage.bucket",
            "is required when storage.mode is \"external\" (bucket names are global on AWS and R2): "
            "`pulumi config set --path 'lobechat-logto:storage.bucket' <name>`",
        )
        bucket = DEFAULT_BUCKET
    else:
        bucket = str(bucket).strip()
        reason = bucket_name_problem(bucket)
        if reason:
            problems.add("storage.bucket", reason)

    region = str(obj.get("region", DEFAULT_REGION)).strip()
    if not _REGION.match(region):
        problems.add("storage.region", "must be an S3 region such as us-east-1 (Cloudflare R2: auto)")

    public_read = _parse_bool(obj.get("publicRead"), "storage.publicRead", problems, False)
    adopt = _parse_bool(obj.get("adoptExisting"), "storage.adoptExisting", problems, False)
    explicit_api = _origin(
        obj.get("apiEndpoint"), "storage.apiEndpoint", problems, False, required=False, example="http://127.0.0.1:9000"
    )
    public_domain_origin = _origin(
        obj.get("publicDomain"), "storage.publicDomain", problems, require_https, required=False,
        example="https://files.example.com",
    )

    if mode == "container":
        return _container(obj, problems, require_https, publish, bucket, region, public_read, adopt,
                          explicit_api, public_domain_origin, _origin, _parse_bool, _pinned_image)
    return _external(source, obj, problems, stack, require_https, bucket, region, public_read, adopt,
                     explicit_api, public_domain_origin, _origin, _parse_bool)


def _refuse_s3_extra_env(source: ConfigSource, problems: Problems, mode: str) -> None:
    # With storage on, the stack sets these itself; a second value through extraEnv would win silently.
    plain = source.get_object("extraEnv")
    try:
        secret = source.get_secret_object("extraSecretEnv")
    except Exception:  # reported by the extraEnv checks
        secret = None
    for key, mapping in (("extraEnv", plain), ("extraSecretEnv", secret)):
        if not isinstance(mapping, Mapping):
            continue
        for name in sorted(str(n) for n in mapping):
            if name in S3_ENV_NAMES:
                problems.add(
                    f"{key}.{name}",
                    f"is set by the stack when storage.mode is \"{mode}\" (from the bucket it manages); "
                    f"remove it here (migrating from S3 variables in {key}: move the bucket, endpoint and "
                    "keys into storage.* and the storage* secret keys, see the README's 'File storage')",
                )


def _container(obj, problems, require_https, publish, bucket, region, public_read, adopt,
               explicit_api, public_domain_origin, origin_of, parse_bool, pinned_image) -> StorageConfig:
    for name in ("endpoint", "pathStyle"):
        if name in obj:
            problems.add(f"storage.{name}", "only applies when storage.mode is \"external\"; the container server is always path-style at storage.publicEndpoint")
    if "lobechatKey" in obj:
        problems.add("storage.lobechatKey", "only applies when storage.mode is \"external\" (AWS S3); the container server's users are not managed by the stack yet (see the README)")
    public = origin_of(
        obj.get("publicEndpoint"), "storage.publicEndpoint", problems, require_https, required=True,
        example="https://s3.example.com",
    )
    image = STORAGE_IMAGE
    if "image" in obj:
        image = pinned_image(problems, "storage.image", obj["image"]) or STORAGE_IMAGE
    container_port = STORAGE_CONTAINER_PORT
    if public is not None and public.is_localhost:
        if not public.explicit_port:
            problems.add("storage.publicEndpoint", f"a *.localhost URL needs an explicit port, e.g. 'http://{public.host}:9000'")
        # Inside the network the *.localhost name is an alias of the server, so it listens on that port.
        container_port = public.port
    publish_port = container_port
    if "publishPort" in obj:
        try:
            publish_port = int(obj["publishPort"])
            if not 1 <= publish_port <= 65535:
                raise ValueError
        except (TypeError, ValueError):
            problems.add("storage.publishPort", "must be a port number (1-65535)")
            publish_port = container_port
        if public is not None and public.is_localhost and publish_port != public.port:
            problems.add("storage.publishPort", f"must equal the port of the *.localhost URL it serves ({public.port}); remove it")
    if publish is not None and publish.enabled and publish_port in (publish.lobechat_port, publish.logto_port, publish.logto_admin_port):
        problems.add("storage.publishPort", "must differ from the published ports of LobeChat and Logto")
    endpoint = public.url if public else None
    if explicit_api is not None:
        api = explicit_api.url
    elif public is not None and public.is_localhost and publish is not None and publish.enabled:
        address = "127.0.0.1" if publish.bind_address in ("0.0.0.0", "127.0.0.1") else publish.bind_address
        if ":" in address and not address.startswith("["):
            address = f"[{address}]"
        api = f"http://{address}:{publish_port}"
    else:
        api = endpoint
    return StorageConfig(
        mode="container",
        bucket=bucket,
        region=region,
        endpoint=endpoint,
        api_endpoint=api,
        public_domain=public_domain_origin.url if public_domain_origin else endpoint,
        public_host=public.host if public else None,
        public_host_is_localhost=bool(public and public.is_localhost),
        path_style=True,
        public_read=public_read,
        image=image,
        container_port=container_port,
        publish_port=publish_port,
        adopt_existing=adopt,
    )


def _external(source, obj, problems, stack, require_https, bucket, region, public_read, adopt,
              explicit_api, public_domain_origin, origin_of, parse_bool) -> StorageConfig:
    for name in ("image", "publishPort", "publicEndpoint"):
        if name in obj:
            hint = "; the endpoint is storage.endpoint" if name == "publicEndpoint" else ""
            problems.add(f"storage.{name}", f"only applies when storage.mode is \"container\"{hint}")
    endpoint_origin: Origin | None = None
    if obj.get("endpoint") is not None:
        endpoint_origin = origin_of(
            obj.get("endpoint"), "storage.endpoint", problems, require_https, required=False,
            example="https://<account>.r2.cloudflarestorage.com",
        )
        endpoint = endpoint_origin.url if endpoint_origin else None
    else:
        # AWS S3: the regional endpoint, which LobeChat's S3 client and the browser both reach.
        endpoint = f"https://s3.{region}.amazonaws.com"
    path_style = parse_bool(obj.get("pathStyle"), "storage.pathStyle", problems, obj.get("endpoint") is not None)
    if public_domain_origin is not None:
        public_domain = public_domain_origin.url
    elif path_style or endpoint is None:
        public_domain = endpoint
    else:
        scheme, _, host = endpoint.partition("://")
        public_domain = f"{scheme}://{bucket}.{host}"

    from components.config.errors import secret_set_command

    values = {key: source.get_secret(key) for key in STORAGE_SECRET_KEYS}
    for key in ("storageAccessKeyId", "storageSecretAccessKey"):
        if values[key] is None:
            problems.add(
                key,
                "is required when storage.mode is \"external\" (credentials allowed to create and configure "
                f"the bucket): run `{secret_set_command(key, stack)}`",
            )
    lobechat_pair = (values["storageLobechatAccessKeyId"], values["storageLobechatSecretAccessKey"])
    if (lobechat_pair[0] is None) != (lobechat_pair[1] is None):
        missing = "storageLobechatSecretAccessKey" if lobechat_pair[1] is None else "storageLobechatAccessKeyId"
        problems.add(missing, f"set both storageLobechatAccessKeyId and storageLobechatSecretAccessKey, or neither: run `{secret_set_command(missing, stack)}`")
    lobechat_key = str(obj.get("lobechatKey", "shared"))
    if lobechat_key not in ("shared", "iam"):
        problems.add("storage.lobechatKey", "must be \"shared\" (LobeChat uses the configured key) or \"iam\" (an IAM user limited to the bucket, AWS S3 only)")
    elif lobechat_key == "iam" and obj.get("endpoint") is not None:
        problems.add(
            "storage.lobechatKey",
            "\"iam\" needs AWS S3 (no storage.endpoint): other S3 services scope keys outside the S3 API; "
            "set storageLobechatAccessKeyId / storageLobechatSecretAccessKey to a key limited to the bucket instead",
        )
    elif lobechat_key == "iam" and lobechat_pair[0] is not None:
        problems.add("storage.lobechatKey", "\"iam\" creates LobeChat's key; remove storageLobechatAccessKeyId / storageLobechatSecretAccessKey, or this setting")
    return StorageConfig(
        mode="external",
        bucket=bucket,
        region=region,
        endpoint=endpoint,
        api_endpoint=explicit_api.url if explicit_api else (endpoint_origin.url if endpoint_origin else None),
        public_domain=public_domain,
        public_host=None,
        path_style=path_style,
        public_read=public_read,
        adopt_existing=adopt,
        access_key_id=values["storageAccessKeyId"],
        secret_access_key=values["storageSecretAccessKey"],
        lobechat_access_key_id=lobechat_pair[0],
        lobechat_secret_access_key=lobechat_pair[1],
        lobechat_key=lobechat_key,
    )
