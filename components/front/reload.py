"""Loading a new Caddy configuration without dropping a connection, and draining the old upstreams.

A one-shot container of the Caddy image runs :data:`RELOAD_SCRIPT` inside the Caddy container's network
namespace (``network_mode: container:<caddy>``), the only place Caddy's admin API (loopback) answers:

1. writes the supplied certificate files (``front.tls: files``; uploaded into ``FRONT_TLS_DIR`` with
   mode 0600 and deleted there once copied) and the new config into the config volume, each through
   a temporary file and a rename, after ``caddy validate`` accepted the config (a bad config never
   replaces the good one);
2. waits until the admin API answers (on the first deployment Caddy starts once the file exists);
3. ``caddy reload --force``: Caddy starts the new config and lets the old one finish its requests
   (a graceful reload; listeners are kept, so no connection is refused);
4. waits until no upstream that the new config does not use has a request in flight (Caddy's
   ``/reverse_proxy/upstreams``), at most ``FRONT_DRAIN_SECONDS``.

Pulumi deletes a replaced LobeChat container only after every create and update of the deployment has
finished, so the old container is stopped after this step: after traffic moved and its requests ended.

Exit codes: 0 done, 2 invalid config, 3 the admin API did not answer, 4 the reload failed.
The script never prints an environment value or a file it was given (the private key is secret).
"""

from __future__ import annotations

from components.logto_bootstrap import readable_container_logs
from components.one_shot import replace_target

TLS_DIR_IN_CONTAINER = "/run/lobechat-logto/tls"
"""Where a writer gets the certificate and key of ``front.tls: files`` (0600; deleted once copied)."""

RELOAD_SCRIPT = r"""
set -u
dir="${FRONT_DIR:-/etc/lobechat-logto-front}"
admin="${FRONT_ADMIN:-127.0.0.1:2019}"
drain="${FRONT_DRAIN_SECONDS:-60}"
wait_api="${FRONT_WAIT_SECONDS:-120}"
umask 077
mkdir -p "$dir" || exit 2
if [ -n "${FRONT_TLS_DIR:-}" ]; then
  # The certificate and key arrive as files (never in the environment, which `docker inspect` shows):
  # copied into the config volume for Caddy, then deleted here, so the stopped writer holds no key.
  mkdir -p "$dir/tls" &&
  cat -- "$FRONT_TLS_DIR/certificate.pem" > "$dir/tls/certificate.pem.new" &&
  cat -- "$FRONT_TLS_DIR/private-key.pem" > "$dir/tls/private-key.pem.new"
  copied=$?
  rm -f -- "$FRONT_TLS_DIR/certificate.pem" "$FRONT_TLS_DIR/private-key.pem"
  if [ "$copied" -ne 0 ]; then
    rm -f -- "$dir/tls/certificate.pem.new" "$dir/tls/private-key.pem.new"
    echo "front: the certificate files were not delivered to $FRONT_TLS_DIR (the running config is unchanged)"
    exit 2
  fi
  mv -f "$dir/tls/certificate.pem.new" "$dir/tls/certificate.pem" &&
  mv -f "$dir/tls/private-key.pem.new" "$dir/tls/private-key.pem" || exit 2
fi
printf '%s' "$FRONT_CONFIG" > "$dir/caddy.json.new" || exit 2
if ! caddy validate --config "$dir/caddy.json.new" > "$dir/validate.log" 2>&1; then
  echo "front: Caddy refused the generated config (the running config is unchanged):"
  grep -v '"level":"info"' "$dir/validate.log" | tail -n 5
  rm -f "$dir/caddy.json.new"
  exit 2
fi
mv -f "$dir/caddy.json.new" "$dir/caddy.json" || exit 2
chmod 0644 "$dir/caddy.json"

tries=0
until wget -q -O /dev/null "http://$admin/config/" 2>/dev/null; do
  tries=$((tries + 1))
  if [ "$tries" -ge $((wait_api * 10)) ]; then
    echo "front: Caddy's admin API at $admin did not answer within ${wait_api} s; is the Caddy container running? (docker logs)"
    exit 3
  fi
  sleep 0.1
done
if ! caddy reload --config "$dir/caddy.json" --address "$admin" --force > "$dir/reload.log" 2>&1; then
  echo "front: caddy reload failed (the running config is unchanged):"
  grep -v '"level":"info"' "$dir/reload.log" | tail -n 5
  exit 4
fi
echo "front: config loaded"

: > /tmp/front-keep
for upstream in ${FRONT_UPSTREAMS:-}; do
  printf '"address":"%s"\n' "$upstream" >> /tmp/front-keep
done
start=$(date +%s)
while :; do
  busy=$(wget -q -O - "http://$admin/reverse_proxy/upstreams" 2>/dev/null | tr '{}' '\n\n' \
    | grep '"num_requests":[1-9]' | grep -v -F -f /tmp/front-keep | wc -l)
  now=$(date +%s)
  if [ "$busy" -eq 0 ]; then
    echo "front: old upstreams drained after $((now - start)) s"
    break
  fi
  if [ $((now - start)) -ge "$drain" ]; then
    echo "front: $busy old upstream(s) still had requests in flight after ${drain} s; going on"
    break
  fi
  sleep 0.2
done
exit 0
"""

EXIT_MEANINGS = {
    2: "Caddy refused the generated configuration, or the certificate files were missing (the running configuration is unchanged)",
    3: "Caddy's admin API did not answer (is the Caddy container running?)",
    4: "caddy reload failed (the running configuration is unchanged)",
}


class FrontReloadError(RuntimeError):
    """The front's configuration could not be loaded."""


def check_reload_exit(exit_code: int | None, logs: str | None, *, container: str = "", urn: str = "") -> None:
    """Raise :class:`FrontReloadError` unless the config writer exited 0."""
    if exit_code == 0:
        return
    where = f" (container {container})" if container else ""
    if exit_code is None:
        raise FrontReloadError(
            f"the front's config writer{where} reported no exit code: it must run attached (attach=True, must_run=False)"
        )
    meaning = EXIT_MEANINGS.get(exit_code, "unexpected exit code")
    output = readable_container_logs(logs) or "(no output)"
    target = replace_target(urn, "the config writer")
    raise FrontReloadError(
        f"the front's config writer exited with code {exit_code}{where}: {meaning}.\n{output}\n"
        f"Fix the cause, then run it again with: pulumi up --replace {target}"
    )
