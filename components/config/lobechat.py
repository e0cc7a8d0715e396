"""LobeChat's own keys: ``lobechatGeneration``, ``lobechatUrl`` and ``lobechatImage``.

The one LobeChat URL (``lobechatUrl``) is the source of every URL the stack derives: the Logto
application's redirect, sign-out and CORS URIs, the webhook URL, ``APP_URL`` and ``NEXTAUTH_URL``; so
they cannot disagree.
"""

from __future__ import annotations

from components.config.errors import Problems
from components.config.fields import parse_origin, pinned_image, split_image
from components.config.sources import ConfigSource
from components.config.stage import LOBECHAT_CONTAINER_PORT, LOBECHAT_IMAGES, Origin

KEYS = frozenset({"lobechatUrl", "lobechatGeneration", "lobechatImage"})


def read_generation(source: ConfigSource, problems: Problems) -> int | None:
    raw = source.get("lobechatGeneration")
    if raw is None:
        return 1
    text = str(raw)
    if text in ("1", "1.x"):
        return 1
    if text in ("2", "2.x"):
        return 2
    problems.add("lobechatGeneration", "must be \"1\" (LobeChat 1.x, Auth.js) or \"2\" (LobeChat 2.x, Better Auth)")
    return None


def read_lobechat_url(source: ConfigSource, problems: Problems, require_https: bool, gen: int) -> Origin | None:
    lobechat_url = parse_origin(
        source.get("lobechatUrl"), "lobechatUrl", problems, require_https, required=True,
        example="https://chat.example.com", trailing_slash_error=(gen == 2),
    )
    if lobechat_url is not None and lobechat_url.is_localhost and lobechat_url.port != LOBECHAT_CONTAINER_PORT:
        problems.add(
            "lobechatUrl",
            f"a *.localhost URL is reached directly on the LobeChat container's port "
            f"{LOBECHAT_CONTAINER_PORT} (from the browser and from Logto's webhooks); use "
            f"'{lobechat_url.scheme}://{lobechat_url.host}:{LOBECHAT_CONTAINER_PORT}'",
        )
    return lobechat_url


def read_lobechat_image(source: ConfigSource, problems: Problems, gen: int) -> str:
    raw = source.get("lobechatImage")
    if raw is None:
        return LOBECHAT_IMAGES[gen]
    image = pinned_image(problems, "lobechatImage", raw)
    if image is None:
        return LOBECHAT_IMAGES[gen]
    repo, tag = split_image(image)
    if repo in ("lobehub/lobe-chat", "docker.io/lobehub/lobe-chat"):
        problems.add(
            "lobechatImage",
            "is the client-side edition; this stack needs the database edition "
            f"('{LOBECHAT_IMAGES[1]}' for 1.x, '{LOBECHAT_IMAGES[2]}' for 2.x)",
        )
    elif gen == 2 and repo == "lobehub/lobe-chat-database":
        problems.add(
            "lobechatImage",
            f"is a LobeChat 1.x image but lobechatGeneration is \"2\"; use e.g. '{LOBECHAT_IMAGES[2]}' or set "
            "lobechatGeneration to \"1\"",
        )
    elif repo == "lobehub/lobehub" and tag[:1].isdigit():
        major = tag.split(".", 1)[0]
        if major != str(gen):
            problems.add(
                "lobechatImage",
                f"is a LobeChat {major}.x image but lobechatGeneration is \"{gen}\"; make them agree "
                "(the two generations need different environments)",
            )
    return image


