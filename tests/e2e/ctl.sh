#!/usr/bin/env bash
# ctl.sh: act on a running harness (the one whose state dir is $E2E_STATE).
#   ctl.sh injector-stop | injector-start | injector-restart | env | logs [N]
# The scenarios call injector-stop/-start (scenario 4) through E2E_INJECTOR_STOP_CMD/_START_CMD.
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${E2E_STATE:?E2E_STATE is not set (source \$E2E_STATE/env of a running harness)}"
# shellcheck source=/dev/null
. "$E2E_STATE/env"
# shellcheck source=lib.sh
. "$E2E_DIR/lib.sh"
e2e_bin_openbao >/dev/null 2>&1 || true
case "${1:-}" in
  injector-stop) e2e_injector_stop ;;
  injector-start) e2e_injector_start ;;
  injector-restart) e2e_injector_stop; e2e_injector_start ;;
  env) cat "$E2E_STATE/env" ;;
  logs) e2e_dump_logs "${2:-80}" ;;
  *) echo "usage: $0 injector-stop|injector-start|injector-restart|env|logs [N]" >&2; exit 2 ;;
esac
