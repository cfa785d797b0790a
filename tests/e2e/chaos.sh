#!/usr/bin/env bash
# tests/e2e/chaos.sh: faults around a running injector, on its own control plane (etcd,
# kube-apiserver, kube-controller-manager; no OpenBao or PostgreSQL). Run by tests/e2e/run.sh
# after tls.sh; runs alone too.
#
#   tests/e2e/chaos.sh          every test
#   tests/e2e/chaos.sh c1 c3    only those
#
# Two replicas run in auto-TLS mode with the leader elector (leader-for-life lock, the caBundle
# keeper's watch on the MutatingWebhookConfiguration, the followers' watch on the certificate
# Secret), behind tls/tcp-proxy.py (the Service: round robin per connection, a backend that
# refuses the connection is skipped), with failurePolicy Fail.
#
#   c1  kube-apiserver SIGKILLed and restarted on the same port: afterwards pods are injected,
#       and a caBundle overwritten after the restart is put back by the leader's keeper (its
#       periodic re-check is hourly, so a restore within seconds is the watch recovering; the
#       time includes what is left of kube-rs's watcher backoff, up to 30 s).
#   c2  etcd SIGKILLed, down 5 s, restarted on the same data dir: the same checks.
#   c3  a pod-creation storm (3 parallel creators) with both replicas: zero failed creations
#       while (a) the leader, which the apiserver is not routed to, is SIGKILLed and restarted
#       (as the kubelet restarts a container: same Pod, so it finds its own lock), and then
#       (b) the replica carrying the apiserver's traffic is stopped with SIGTERM (graceful:
#       HTTP/2 GOAWAY, so the apiserver retries on a new connection, which the proxy sends to
#       the live replica) and restarted.
#       Then, measured and NOT asserted: (c) the replica carrying the traffic is SIGKILLed. A
#       request in flight on it is lost: the apiserver does not retry a webhook POST whose
#       connection broke (its client retries only GETs), and TLS is end to end so no L4 proxy
#       can replay it; with failurePolicy Fail that pod's creation fails. What is printed is how
#       many creations failed and how long until the next one succeeded (the apiserver
#       reconnects, the proxy skips the dead replica).
#
# At the end, the replicas' logs (trace level, through all of the above) are searched for the
# serving key and the service-account token.
#
# "The apiserver is routed only to live replicas" is what makes (a) and (b) zero-failure: in a
# cluster the same holds when the Endpoints drop a replica before it dies (a preStop delay,
# or a rolling update), not for an OOM kill of the replica serving. Figures are printed as
# `chaos-figure: ...`.
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$E2E_DIR/lib.sh"
cd "$E2E_ROOT"

filters=("$@")
want() {
  [ "${#filters[@]}" = 0 ] && return 0
  local f
  for f in "${filters[@]}"; do [ "$1" = "$f" ] && return 0; done
  return 1
}

WEBHOOK=vault-agent-injector-cfg
KUBECTL() { "$E2E_KUBECTL" "$@"; }

e2e_bin_all etcd kube-apiserver kube-controller-manager kubectl
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$E2E_ROOT/target}"
if [ -z "${E2E_INJECTOR_BIN:-}" ]; then
  cargo build --bin vault-injector
  E2E_INJECTOR_BIN="$CARGO_TARGET_DIR/debug/vault-injector"
fi
export E2E_INJECTOR_BIN

e2e_state_init
finish() {
  local rc=$?
  trap - EXIT INT TERM
  [ "$rc" = 0 ] || e2e_dump_logs 60
  # storm loops still running (a failed check)
  for f in "$C"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  e2e_teardown
  if [ -n "${E2E_KEEP_STATE:-}" ]; then e2e_say "state kept in $E2E_STATE"; else rm -rf "$E2E_STATE"; fi
  exit "$rc"
}
C="$E2E_STATE/chaos"
mkdir -p "$C"
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { e2e_say "FAIL: $*"; exit 1; }
figure() { echo "chaos-figure: $*" | tee -a "$C/figures" >&2; }
now_ms() { date +%s%3N; }

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local secs="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s: $what"
    sleep 0.1
  done
}

# hard_kill NAME: SIGKILL the process group e2e_spawn started, and wait until it is gone.
hard_kill() {
  local pid
  pid="$(cat "$E2E_STATE/pids/$1")"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
  # Reaped here (it is this shell's job), so bash prints no "Killed" notice later.
  wait "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$E2E_STATE/pids/$1"
}

# ---------------------------------------------------------------------------------------------
# stack: cluster, webhook-config/ with an empty caBundle and failurePolicy Fail pointing at the
# proxy, the leader-elector RBAC, two replicas.

e2e_autotls_stack "$C"

# The Pod objects the replicas' POD_NAME refer to (never scheduled; the leader lock's owner).
for i in 0 1; do
  KUBECTL -n vault apply -f - >&2 <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: vault-injector-$i
  labels: {app.kubernetes.io/name: vault-agent-injector}
spec:
  containers:
  - name: sidecar-injector
    image: vault-injector:latest
EOF
done

# start_replica I PORT: replica I (process inj-I, Pod vault-injector-I) on PORT.
# Logged at trace, so that the audit at the end sees every line the fault paths log.
start_replica() {
  e2e_injector_spawn "inj-$1" "$2" POD_NAME="vault-injector-$1" \
    AGENT_INJECT_TLS_AUTO="$WEBHOOK" AGENT_INJECT_TLS_AUTO_HOSTS="$HOSTS" \
    AGENT_INJECT_USE_LEADER_ELECTOR=true AGENT_INJECT_LOG_LEVEL=trace >&2
}

trusted() { e2e_trusted "$WEBHOOK" "$C" "$1"; }

served() { grep -c 'Request received' "$E2E_STATE/logs/inj-$1.log" || true; }

serial() { e2e_leaf_serial "$1"; }
export -f serial e2e_leaf_serial

P0="$(e2e_free_port)"
P1="$(e2e_free_port)"
start_replica 0 "$P0"
wait_for 60 "replica 0 ready with a trusted certificate" trusted "$P0"
start_replica 1 "$P1"
wait_for 60 "replica 1 ready with a trusted certificate" trusted "$P1"
[ "$(KUBECTL -n vault get configmap vault-k8s-leader -o jsonpath='{.metadata.ownerReferences[0].name}')" = vault-injector-0 ] ||
  fail "replica 0 should lead"
# The apiserver goes to replica 1, the follower, until c3 says otherwise.
echo "$P1" > "$C/backends"

KUBECTL create namespace chaos >&2
KUBECTL label namespace chaos vault-injector/inject=enabled >&2

# inject_one NAME: create one pod; succeeds when it was created with the sidecar, else prints
# what kubectl said.
inject_one() {
  local out
  out="$(KUBECTL -n chaos create -o jsonpath='{range .spec.containers[*]}{.name}{" "}{end}' -f - 2>&1 <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
  annotations:
    vault.hashicorp.com/agent-inject: "true"
    vault.hashicorp.com/role: app
spec:
  containers:
  - name: app
    image: busybox
EOF
)" && [[ "$out" == *vault-agent* ]] && return 0
  echo "${out:-no output}"
  return 1
}

# after_restart LABEL T0: pods are injected again and an overwritten caBundle is restored;
# prints the times from T0 (the component is ready again).
after_restart() {
  local label="$1" t0="$2" n=0 t_pod t_ca ours
  until inject_one "$label-first-$n" >/dev/null; do
    n=$((n + 1))
    [ $(( $(now_ms) - t0 )) -lt 60000 ] || fail "$label: no pod injected within 60 s"
    sleep 0.1
  done
  t_pod=$(( $(now_ms) - t0 ))
  for i in 1 2 3; do inject_one "$label-after-$i" || fail "$label: pod $i after the restart was not injected"; done
  KUBECTL get mutatingwebhookconfiguration "$WEBHOOK" -o jsonpath='{.webhooks[0].clientConfig.caBundle}' > "$C/ours"
  ours="$(cat "$C/ours")"
  local t1
  t1=$(now_ms)
  KUBECTL patch mutatingwebhookconfiguration "$WEBHOOK" --type=json \
    -p "[{\"op\":\"replace\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$(base64 -w0 < "$E2E_STATE/pki/ca.crt")\"}]" >&2
  # Up to kube-rs's watcher backoff (0.8 s doubling to 30 s, with jitter; the errors while the
  # apiserver was down, and its `410 Expired` after, each take a step) plus a relist.
  wait_for 60 "$label: the overwritten caBundle is restored" \
    bash -c "[ \"\$('$E2E_KUBECTL' get mutatingwebhookconfiguration $WEBHOOK -o jsonpath='{.webhooks[0].clientConfig.caBundle}')\" = '$ours' ]"
  t_ca=$(( $(now_ms) - t1 ))
  inject_one "$label-after-ca" || fail "$label: pod after the caBundle restore was not injected"
  figure "$label: first pod injected ${t_pod} ms after the restart was ready ($n failed tries before), overwritten caBundle restored in ${t_ca} ms"
}

c1_apiserver_restart() {
  e2e_say "=== c1: kube-apiserver SIGKILLed and restarted"
  local t0 t_ready
  inject_one c1-before || fail "c1: no injection before the restart"
  t0=$(now_ms)
  hard_kill kube-apiserver
  sleep 2
  e2e_apiserver_start "$E2E_API_PORT" || fail "c1: the apiserver did not come back"
  t_ready=$(( $(now_ms) - t0 ))
  figure "c1: kube-apiserver down and back to /readyz in ${t_ready} ms (2 s down)"
  after_restart c1 "$(now_ms)"
  e2e_alive inj-0 && e2e_alive inj-1 || fail "c1: a replica died"
}

c2_etcd_restart() {
  e2e_say "=== c2: etcd SIGKILLed, down 5 s, restarted"
  local t0 t_ready
  inject_one c2-before || fail "c2: no injection before the restart"
  t0=$(now_ms)
  hard_kill etcd
  sleep 5
  e2e_etcd_start "$E2E_ETCD_PORT" "$E2E_ETCD_PEER_PORT" || fail "c2: etcd did not come back"
  wait_for 60 "c2: the apiserver is ready again" KUBECTL get --raw /readyz
  t_ready=$(( $(now_ms) - t0 ))
  figure "c2: etcd down 5 s; apiserver /readyz again ${t_ready} ms after the kill"
  after_restart c2 "$(now_ms)"
  e2e_alive inj-0 && e2e_alive inj-1 || fail "c2: a replica died"
}

# storm_start NAME: 3 parallel creators until $C/NAME.stop exists; one line per pod in
# $C/NAME.results: `ok` or `FAIL <time> <error>`.
storm_start() {
  local name="$1" w
  rm -f "$C/$name.stop"
  : > "$C/$name.results"
  for w in 1 2 3; do
    (
      i=0
      while [ ! -e "$C/$name.stop" ]; do
        i=$((i + 1))
        if out="$(inject_one "$name-$w-$i" 2>&1)"; then
          echo "ok $(now_ms)" >> "$C/$name.results"
        else
          echo "FAIL $(now_ms) $(date +%T.%3N) ${out//$'\n'/ }" >> "$C/$name.results"
        fi
      done
    ) &
    echo $! > "$C/$name.$w.pid"
  done
}

# storm_stop NAME: stop the creators (in this shell: they are its children); sets OK and BAD.
storm_stop() {
  local name="$1" w
  touch "$C/$name.stop"
  for w in 1 2 3; do
    wait "$(cat "$C/$name.$w.pid")" 2>/dev/null || true
    rm -f "$C/$name.$w.pid"
  done
  OK="$(grep -c '^ok' "$C/$name.results" || true)"
  BAD="$(grep -c '^FAIL' "$C/$name.results" || true)"
}

c3_storm_with_replica_faults() {
  e2e_say "=== c3: pod-creation storm, replicas killed and restarted"
  local t0 t_back t_leaf ok bad s0 s1 first_fail next_ok
  # (a) the leader, not routed to, SIGKILLed and restarted in the same Pod.
  s1="$(served 1)"
  storm_start c3a
  sleep 3
  t0=$(now_ms)
  hard_kill inj-0
  sleep 1
  start_replica 0 "$P0"
  wait_for 60 "c3a: the restarted leader is ready and trusted" trusted "$P0"
  t_back=$(( $(now_ms) - t0 ))
  # The restarted leader makes a new CA and leaf; the follower takes the leaf from the Secret
  # through the watch that went through c1 and c2 (the storm keeps going to it meanwhile).
  wait_for 30 "c3a: replica 1 serves the restarted leader's leaf" \
    bash -c "[ \"\$(serial $P0)\" = \"\$(serial $P1)\" ] && [ -n \"\$(serial $P1)\" ]"
  t_leaf=$(( $(now_ms) - t0 ))
  sleep 2
  storm_stop c3a; ok=$OK bad=$BAD
  grep -q 'Found existing lock with my name' "$E2E_STATE/logs/inj-0.log" || fail "c3a: the restarted leader did not find its lock"
  trusted "$P1" || fail "c3a: replica 1 no longer trusted"
  figure "c3a: leader SIGKILLed and restarted during the storm: serving a trusted certificate again after ${t_back} ms (1 s down), its new leaf served by the follower after ${t_leaf} ms; $ok pods created and injected, $bad failed (replica 1 served $(( $(served 1) - s1 )) reviews)"
  [ "$bad" = 0 ] || { grep '^FAIL' "$C/c3a.results" | head -5 >&2; fail "c3a: $bad pod creations failed"; }
  [ "$ok" -gt 0 ] || fail "c3a: no pod was created"

  # (b) both routed; the replica carrying the traffic (1) stopped gracefully and restarted.
  printf '%s\n%s\n' "$P0" "$P1" > "$C/backends"
  s0="$(served 0)"
  storm_start c3b
  sleep 3
  t0=$(now_ms)
  e2e_stop inj-1
  sleep 1
  start_replica 1 "$P1"
  wait_for 60 "c3b: the restarted replica 1 is ready and trusted" trusted "$P1"
  t_back=$(( $(now_ms) - t0 ))
  sleep 3
  storm_stop c3b; ok=$OK bad=$BAD
  figure "c3b: replica carrying the traffic stopped (SIGTERM, GOAWAY) and restarted during the storm: trusted again after ${t_back} ms; $ok pods created and injected, $bad failed (replica 0 took over $(( $(served 0) - s0 )) reviews)"
  [ "$bad" = 0 ] || { grep '^FAIL' "$C/c3b.results" | head -5 >&2; fail "c3b: $bad pod creations failed"; }
  [ "$(( $(served 0) - s0 ))" -gt 0 ] || fail "c3b: replica 0 served nothing after replica 1 stopped"

  # (c) measured only: SIGKILL of the replica carrying the traffic (now 0).
  s0="$(served 0)"
  storm_start c3c
  sleep 2
  [ "$(( $(served 0) - s0 ))" -gt 0 ] || e2e_say "c3c: replica 0 is not the one carrying the traffic; measuring anyway"
  t0=$(now_ms)
  hard_kill inj-0
  sleep 3
  storm_stop c3c; ok=$OK bad=$BAD
  first_fail="$(awk '$1=="FAIL"{print $2; exit}' "$C/c3c.results")"
  next_ok="$(awk -v t="$t0" '$1=="ok" && $2>t {print $2; exit}' "$C/c3c.results")"
  figure "c3c (not asserted): replica carrying the traffic SIGKILLed during the storm: $bad of $((ok + bad)) creations failed (requests in flight on it)${first_fail:+, first failure $((first_fail - t0)) ms after the kill}${next_ok:+; next successful creation finished $((next_ok - t0)) ms after the kill}"
  grep '^FAIL' "$C/c3c.results" | head -3 | cut -c1-300 >&2 || true
  start_replica 0 "$P0"
  wait_for 60 "c3c: replica 0 is back" trusted "$P0"
}

# audit_logs: no private key (PEM marker, or any 32 characters of the leaf key the replicas
# share through the Secret) and no piece of the service-account token in the replicas' logs,
# which went through every fault above at trace level.
audit_logs() {
  local key token sig f
  key="$(KUBECTL -n vault get secret vault-injector-certs -o jsonpath='{.data.key}' | base64 -d | grep -v '^-----' | tr -d '\n')"
  token="$(cat "$E2E_STATE/injector/serviceaccount/token")"
  sig="${token##*.}"
  [ "${#key}" -ge 64 ] && [ "${#sig}" -ge 64 ] || fail "audit: no key or token to look for"
  for f in "$E2E_STATE"/logs/inj-*.log; do
    grep -q 'PRIVATE KEY' "$f" && fail "audit: a PEM private key in $(basename "$f")"
    grep -qF -e "${key:0:32}" -e "${key: -32}" -e "${sig:0:32}" -e "${sig: -32}" -e "${token:0:48}" "$f" &&
      fail "audit: the serving key or the token in $(basename "$f")"
  done
  figure "audit: no private key or token in $(cat "$E2E_STATE"/logs/inj-*.log | wc -l) trace-level log lines of the replicas"
}

ran=0
want c1 && { c1_apiserver_restart; ran=$((ran + 1)); }
want c2 && { c2_etcd_restart; ran=$((ran + 1)); }
want c3 && { c3_storm_with_replica_faults; ran=$((ran + 1)); }
audit_logs
e2e_say "chaos: $ran tests passed"
