#!/usr/bin/env bash
# Best effort: Debian's docker-compose validates docker-compose.yml offline (no Docker engine
# needed). The deploy test skips that check, saying so, when it cannot be installed.
command -v docker-compose >/dev/null 2>&1 && exit 0
(apt-get update -qq && apt-get install -y -qq docker-compose) >/dev/null 2>&1 || echo "ensure-docker-compose: could not install docker-compose; the compose check will be skipped" >&2
exit 0
