#!/usr/bin/env bash
# Makes sure a Redis answers on 127.0.0.1:6379 for the tests: starts one (no persistence) if
# none does, installing Debian's redis-server first when it is missing.
set -euo pipefail
ping() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
if ping; then exit 0; fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "ensure-redis: installing redis-server" >&2
  (apt-get update -qq && apt-get install -y -qq redis-server) >&2
fi
echo "ensure-redis: starting redis-server on 127.0.0.1:6379" >&2
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >&2
for _ in $(seq 1 50); do ping && exit 0; sleep 0.1; done
echo "ensure-redis: Redis did not come up on 127.0.0.1:6379" >&2
exit 1
