#!/usr/bin/env bash
# tests/e2e/tls.sh: auto-TLS (AGENT_INJECT_TLS_AUTO) against the real kube-apiserver of the
# harness. Run by tests/e2e/run.sh after the scenarios; runs alone too (it starts and stops its
# own cluster: etcd, kube-apiserver, kube-controller-manager; no OpenBao or PostgreSQL).
#
#   tests/e2e/tls.sh            every test
#   tests/e2e/tls.sh t1 t3      only those
#
#   t1  one replica: the caBundle is written, pods are injected through the apiserver (which
#       checks our certificate against that bundle), and an overwritten caBundle is restored.
#   t2  rotation under load: leaf lifetime 20 s (VAULT_INJECTOR_TEST_LEAF_LIFETIME, test-only),
#       pods created continuously with failurePolicy Fail through >= 3 renewals: zero failures,
#       no TLS error in the apiserver log.
#   t3  two replicas with the leader elector: both serve the same trusted leaf; the leader is
#       SIGKILLed (and its Pod deleted) while pods are created: zero failures, the follower
#       takes over (time measured), and a later renewal still works.
#   t4  stale locks: a lock owned by an evicted Pod, then by a Pod on a NotReady node, is taken
#       over by a new replica (time measured).
#   t5  Lease mode (AGENT_INJECT_LEADER_ELECTION_MODE=lease, plus the Lease RBAC of
#       tls/lease-rbac.yaml): two replicas serve the same trusted leaf; the leader is SIGKILLed
#       (its Pod is left alone: a Lease expires on its own) while pods are created: zero
#       failures, the survivor takes the Lease within the documented bound (15 s lease + 2 x
#       2.2 s retry = 19.4 s; measured), takes over the certificate, and a renewal still works.
#   t6  file mode (AGENT_INJECT_TLS_CERT_FILE/KEY_FILE in a kubelet-style Secret volume: files
#       behind a `..data` symlink that is swapped atomically): with failurePolicy Fail and the
#       test CA as caBundle, pods are created while the files are swapped to a new leaf (time
#       until it is served measured) and then to a mismatched cert/key pair, which is logged
#       while the previous leaf keeps serving: zero failures.
#
# The apiserver reaches the replicas through tls/tcp-proxy.py (a stand-in for the Service:
# round robin per connection, dead backends skipped). Figures are printed as `tls-figure: ...`.
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

LIFETIME=20  # seconds; renewal is due with 10 % left, so every 18 s
LEASE_LIFETIME=30  # t5's (see there)
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
  e2e_teardown
  if [ -n "${E2E_KEEP_STATE:-}" ]; then e2e_say "state kept in $E2E_STATE"; else rm -rf "$E2E_STATE"; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

T="$E2E_STATE/tls"
mkdir -p "$T"
fail() { e2e_say "FAIL: $*"; exit 1; }
figure() { echo "tls-figure: $*" | tee -a "$T/figures" >&2; }
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------------------------
# stack: cluster, webhook-config/ with an empty caBundle and failurePolicy Fail, pointing at the
# proxy; the leader-elector RBAC.

e2e_autotls_stack "$T"

# start_replica NAME POD [VAR=VALUE...]: an injector in auto mode on a fresh port, added to the
# proxy's backends; prints the port.
start_replica() {
  local name="$1" pod="$2" port
  shift 2
  port="$(e2e_free_port)"
  e2e_injector_spawn "$name" "$port" POD_NAME="$pod" \
    AGENT_INJECT_TLS_AUTO="$WEBHOOK" AGENT_INJECT_TLS_AUTO_HOSTS="$HOSTS" \
    VAULT_INJECTOR_TEST_LEAF_LIFETIME="${LIFETIME}s" "$@" >&2
  echo "$port" >> "$T/backends"
  echo "$port"
}

bundle() { e2e_ca_bundle "$WEBHOOK" "$1"; }
bundle_count() { bundle "$T/b" && grep -c 'BEGIN CERTIFICATE' "$T/b" || echo 0; }
trusted() { e2e_trusted "$WEBHOOK" "$T" "$1"; }
serial() { e2e_leaf_serial "$1"; }

# load_start NAME: create injected pods in a loop (kubectl create, one at a time) until
# $T/NAME.stop exists; one line per pod in $T/NAME.results: `ok` or `FAIL <error>`.
load_start() {
  local name="$1"
  KUBECTL create namespace "tls-$name" >&2
  KUBECTL label namespace "tls-$name" vault-injector/inject=enabled >&2
  rm -f "$T/$name.stop"
  : > "$T/$name.results"
  (
    i=0
    while [ ! -e "$T/$name.stop" ]; do
      i=$((i + 1))
      out="$(KUBECTL -n "tls-$name" create -o jsonpath='{range .spec.containers[*]}{.name}{" "}{end}' -f - 2>&1 <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name-$i
  annotations:
    vault.hashicorp.com/agent-inject: "true"
    vault.hashicorp.com/role: app
spec:
  containers:
  - name: app
    image: busybox
EOF
)" && [[ "$out" == *vault-agent* ]] && echo ok >> "$T/$name.results" ||
        echo "FAIL $(date +%T.%3N) $out" | tr '\n' ' ' >> "$T/$name.results"
      [[ "$(tail -c 1 "$T/$name.results")" == $'\n' ]] || echo >> "$T/$name.results"
    done
  ) &
  echo $! > "$T/$name.pid"
}

# load_stop NAME: stop the loop; fail unless every creation succeeded.
load_stop() {
  local name="$1" ok bad
  touch "$T/$name.stop"
  wait "$(cat "$T/$name.pid")" 2>/dev/null || true
  ok="$(grep -c '^ok' "$T/$name.results" || true)"
  bad="$(grep -c '^FAIL' "$T/$name.results" || true)"
  figure "$name: $ok pods created and injected, $bad failed"
  [ "$bad" = 0 ] || { grep '^FAIL' "$T/$name.results" | head -5 >&2; fail "$name: $bad pod creations failed"; }
  [ "$ok" -gt 0 ] || fail "$name: no pod was created"
  KUBECTL delete namespace "tls-$name" --wait=false >/dev/null 2>&1 || true
}

# Lines the apiserver logs when it cannot reach or trust the webhook.
apiserver_webhook_errors() {
  grep -cE 'failed calling webhook|x509|tls: ' "$E2E_STATE/logs/kube-apiserver.log" || true
}

# make_pod NAME [NODE]: a Pod object for a replica's POD_NAME (never scheduled: there is no
# scheduler; only the leader lock's owner reference and the take-over checks read it).
make_pod() {
  KUBECTL -n vault apply -f - >&2 <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
  labels: {app.kubernetes.io/name: vault-agent-injector}
spec:
  ${2:+nodeName: $2}
  containers:
  - name: sidecar-injector
    image: vault-injector:latest
EOF
}

lease_holder() {
  KUBECTL -n vault get lease vault-k8s-leader -o jsonpath='{.spec.holderIdentity}' 2>/dev/null
}

lock_owner() {
  KUBECTL -n vault get configmap vault-k8s-leader -o jsonpath='{.metadata.ownerReferences[0].name}' 2>/dev/null
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local secs="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s: $what"
    sleep 0.2
  done
}

t1_one_replica() {
  e2e_say "=== t1: one replica in auto mode"
  local t0 port
  t0=$(now_ms)
  port="$(start_replica inj-single vault-injector-e2e)"
  wait_for 60 "the single replica is ready with a trusted certificate" trusted "$port"
  figure "t1: ready with a trusted certificate $(( $(now_ms) - t0 )) ms after start"
  [ "$(bundle_count)" = 1 ] || fail "t1: the caBundle should hold exactly one CA"
  openssl x509 -in "$T/b" -noout -subject | grep -q 'Agent Inject CA' || fail "t1: caBundle is not our CA"
  load_start t1
  sleep 3
  load_stop t1
  # Someone else overwrites the caBundle: the injector puts its own back.
  bundle "$T/ours"
  KUBECTL patch mutatingwebhookconfiguration "$WEBHOOK" --type=json \
    -p "[{\"op\":\"replace\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$(base64 -w0 < "$E2E_STATE/pki/ca.crt")\"}]" >&2
  t0=$(now_ms)
  wait_for 30 "the caBundle is restored" bash -c "cmp -s <('$E2E_KUBECTL' get mutatingwebhookconfiguration $WEBHOOK -o jsonpath='{.webhooks[0].clientConfig.caBundle}' | base64 -d) '$T/ours'"
  figure "t1: overwritten caBundle restored in $(( $(now_ms) - t0 )) ms"
}

t2_rotation_under_load() {
  e2e_say "=== t2: rotation under load (leaf lifetime ${LIFETIME}s)"
  local port errors_before serials=() s last="" t0
  port="$(tail -n 1 "$T/backends")"
  errors_before="$(apiserver_webhook_errors)"
  load_start t2
  t0=$SECONDS
  # at least 3 renewals: 3 × 18 s after the first leaf, plus margin
  while [ $((SECONDS - t0)) -lt 62 ]; do
    s="$(serial "$port")"
    if [ -n "$s" ] && [ "$s" != "$last" ]; then
      trusted "$port" || fail "t2: leaf $s is not trusted by the caBundle"
      serials+=("$s")
      last="$s"
    fi
    sleep 1
  done
  load_stop t2
  figure "t2: ${#serials[@]} distinct leaves served in 62 s ($(( ${#serials[@]} - 1 )) renewals); caBundle holds $(bundle_count) CA"
  [ "${#serials[@]}" -ge 4 ] || fail "t2: expected at least 3 renewals, saw ${#serials[@]} leaves"
  [ "$(apiserver_webhook_errors)" = "$errors_before" ] || fail "t2: the apiserver logged webhook/TLS errors"
  e2e_stop inj-single
  sed -i "/^$port\$/d" "$T/backends"
}

t3_two_replicas_failover() {
  e2e_say "=== t3: two replicas, leader killed under load"
  local p0 p1 leader survivor sport t0 t_lock t_bundle s_before
  make_pod vault-injector-0
  make_pod vault-injector-1
  p0="$(start_replica inj-0 vault-injector-0 AGENT_INJECT_USE_LEADER_ELECTOR=true)"
  wait_for 60 "replica 0 ready" trusted "$p0"
  p1="$(start_replica inj-1 vault-injector-1 AGENT_INJECT_USE_LEADER_ELECTOR=true)"
  wait_for 60 "replica 1 ready" trusted "$p1"
  leader="$(lock_owner)"
  [ "$leader" = vault-injector-0 ] || fail "t3: the first replica should lead, the lock names '$leader'"
  wait_for 30 "both replicas serve the same leaf" bash -c "[ \"\$(openssl s_client -connect 127.0.0.1:$p0 </dev/null 2>/dev/null | openssl x509 -noout -serial)\" = \"\$(openssl s_client -connect 127.0.0.1:$p1 </dev/null 2>/dev/null | openssl x509 -noout -serial)\" ]"
  trusted "$p0" && trusted "$p1" || fail "t3: both replicas must serve a trusted certificate"
  KUBECTL -n vault get secret vault-injector-certs -o jsonpath='{.data.cert}' | base64 -d | grep -q 'BEGIN CERTIFICATE' ||
    fail "t3: the leader did not write the certificate Secret"
  sport="$p1" survivor=vault-injector-1
  # The apiserver goes to the survivor only. A SIGKILL loses whatever request is in flight on
  # the killed process whatever the certificates do (an `unexpected EOF` for that pod); what is
  # tested here is the certificate hand-over: the survivor keeps serving a trusted leaf while it
  # takes the lock, publishes [old CA, new CA], switches to its own leaf and renews it.
  echo "$sport" > "$T/backends"

  load_start t3
  sleep 4
  t0=$(now_ms)
  kill -KILL -- "-$(cat "$E2E_STATE/pids/inj-0")"
  rm -f "$E2E_STATE/pids/inj-0"
  # What the kubelet and the controllers would do next: the Pod goes away.
  KUBECTL -n vault delete pod vault-injector-0 --wait=false >&2
  wait_for 60 "the follower takes the lock" bash -c "[ \"\$('$E2E_KUBECTL' -n vault get configmap vault-k8s-leader -o jsonpath='{.metadata.ownerReferences[0].name}' 2>/dev/null)\" = $survivor ]"
  t_lock=$(( $(now_ms) - t0 ))
  wait_for 60 "the new leader publishes [old CA, new CA]" bash -c "[ \"\$('$E2E_KUBECTL' get mutatingwebhookconfiguration $WEBHOOK -o jsonpath='{.webhooks[0].clientConfig.caBundle}' | base64 -d | grep -c 'BEGIN CERTIFICATE')\" = 2 ]"
  t_bundle=$(( $(now_ms) - t0 ))
  # The new CA is the bundle's last certificate; only a leaf it signed verifies against it alone.
  bundle "$T/b"
  awk '/BEGIN CERTIFICATE/{n++} n==2' "$T/b" > "$T/new-ca"
  wait_for 30 "the new leader serves a leaf of its own CA" \
    curl -fsS --max-time 5 --cacert "$T/new-ca" "https://127.0.0.1:$sport/health/ready"
  t_leaf=$(( $(now_ms) - t0 ))
  trusted "$sport" || fail "t3: the new leader's certificate is not trusted"
  figure "t3: failover after SIGKILL + Pod deletion: lock taken in $t_lock ms, caBundle [old, new] in $t_bundle ms, own leaf served in $t_leaf ms"
  # A later renewal still works.
  s_before="$(serial "$sport")"
  t0=$(now_ms)
  wait_for $((LIFETIME + 10)) "a renewal after the failover" bash -c "s=\$(openssl s_client -connect 127.0.0.1:$sport </dev/null 2>/dev/null | openssl x509 -noout -serial | cut -d= -f2); [ -n \"\$s\" ] && [ \"\$s\" != '$s_before' ]"
  curl -fsS --max-time 5 --cacert "$T/new-ca" "https://127.0.0.1:$sport/health/ready" >/dev/null ||
    fail "t3: the renewed leaf is not signed by the new CA"
  figure "t3: renewal after failover served and trusted ($(( $(now_ms) - t0 )) ms after the first leaf was seen)"
  load_stop t3
}

t4_stale_locks() {
  e2e_say "=== t4: stale locks (evicted leader, leader on a NotReady node)"
  local leader port t0
  leader="$(lock_owner)"
  [ -n "$leader" ] || fail "t4: no lock to start from"
  # The current leader stops (its process only: the Pod object stays and keeps the lock) and
  # its Pod is marked evicted.
  e2e_stop inj-1
  sed -i '1,$d' "$T/backends"
  KUBECTL -n vault patch pod "$leader" --subresource=status --type=merge \
    -p '{"status":{"phase":"Failed","reason":"Evicted","message":"The node was low on resource: memory."}}' >&2
  make_pod vault-injector-2
  t0=$(now_ms)
  port="$(start_replica inj-2 vault-injector-2 AGENT_INJECT_USE_LEADER_ELECTOR=true)"
  wait_for 60 "the new replica takes over the evicted leader's lock" bash -c "[ \"\$('$E2E_KUBECTL' -n vault get configmap vault-k8s-leader -o jsonpath='{.metadata.ownerReferences[0].name}' 2>/dev/null)\" = vault-injector-2 ]"
  figure "t4: lock of an evicted leader taken over in $(( $(now_ms) - t0 )) ms"
  wait_for 30 "the new leader is trusted" trusted "$port"
  KUBECTL -n vault get pod "$leader" >/dev/null 2>&1 && fail "t4: the evicted leader pod should have been deleted"

  # Now the leader's node goes NotReady.
  e2e_stop inj-2
  sed -i '1,$d' "$T/backends"
  KUBECTL apply -f - >&2 <<EOF
apiVersion: v1
kind: Node
metadata:
  name: tls-node-down
EOF
  KUBECTL patch node tls-node-down --subresource=status --type=merge \
    -p '{"status":{"conditions":[{"type":"Ready","status":"Unknown","reason":"NodeStatusUnknown","lastHeartbeatTime":null,"lastTransitionTime":null}]}}' >&2
  # Move the lock to a Pod on that node, as if it had been the leader there.
  make_pod vault-injector-3 tls-node-down
  KUBECTL -n vault delete pod vault-injector-2 --wait=false >&2
  wait_for 30 "the old lock is garbage collected" bash -c "! '$E2E_KUBECTL' -n vault get configmap vault-k8s-leader"
  KUBECTL -n vault apply -f - >&2 <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: vault-k8s-leader
  ownerReferences:
  - apiVersion: v1
    kind: Pod
    name: vault-injector-3
    uid: $(KUBECTL -n vault get pod vault-injector-3 -o jsonpath='{.metadata.uid}')
EOF
  make_pod vault-injector-4
  t0=$(now_ms)
  port="$(start_replica inj-4 vault-injector-4 AGENT_INJECT_USE_LEADER_ELECTOR=true)"
  wait_for 60 "the new replica takes over the lock of a leader on a NotReady node" bash -c "[ \"\$('$E2E_KUBECTL' -n vault get configmap vault-k8s-leader -o jsonpath='{.metadata.ownerReferences[0].name}' 2>/dev/null)\" = vault-injector-4 ]"
  figure "t4: lock of a leader on a NotReady node taken over in $(( $(now_ms) - t0 )) ms"
  wait_for 30 "the new leader is trusted" trusted "$port"
  e2e_stop inj-4
}

t5_lease_failover() {
  e2e_say "=== t5: two replicas in Lease mode, leader killed under load"
  local p0 p1 t0 t_lease t_bundle t_leaf s_before left
  # A 30 s leaf (renewed every 27 s): the dead leader's leaf, which the survivor serves until
  # it has its own, must outlive the failover (<= 19.4 s, plus the 2 s caBundle propagation);
  # with t1's 20 s it could expire first. (In a deployment the leaf lives 24 h and is renewed
  # 2 h 24 min before it expires.)
  local lease=(AGENT_INJECT_USE_LEADER_ELECTOR=true AGENT_INJECT_LEADER_ELECTION_MODE=lease
    VAULT_INJECTOR_TEST_LEAF_LIFETIME="${LEASE_LIFETIME}s")
  KUBECTL apply -f "$E2E_DIR/tls/lease-rbac.yaml" >&2
  sed -i '1,$d' "$T/backends"
  p0="$(start_replica inj-l0 vault-injector-l0 "${lease[@]}")"
  wait_for 60 "replica l0 ready" trusted "$p0"
  wait_for 30 "replica l0 holds the Lease" bash -c "[ \"\$('$E2E_KUBECTL' -n vault get lease vault-k8s-leader -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)\" = vault-injector-l0 ]"
  p1="$(start_replica inj-l1 vault-injector-l1 "${lease[@]}")"
  wait_for 60 "replica l1 ready" trusted "$p1"
  # l0 has written its leaf to the Secret and l1 serves it.
  wait_for 30 "both replicas serve the same leaf" bash -c "[ \"\$(openssl s_client -connect 127.0.0.1:$p0 </dev/null 2>/dev/null | openssl x509 -noout -serial)\" = \"\$(openssl s_client -connect 127.0.0.1:$p1 </dev/null 2>/dev/null | openssl x509 -noout -serial)\" ]"
  trusted "$p0" && trusted "$p1" || fail "t5: both replicas must serve a trusted certificate"
  [ "$(lease_holder)" = vault-injector-l0 ] || fail "t5: l0 should still hold the Lease, it names '$(lease_holder)'"
  bundle "$T/bundle-before"
  # The apiserver goes to the survivor only, as in t3: a SIGKILL loses the request in flight on
  # the killed process whatever the certificates do; what is tested is the hand-over.
  echo "$p1" > "$T/backends"

  load_start t5
  sleep 1
  left=$(( $(date -d "$(openssl s_client -connect "127.0.0.1:$p1" </dev/null 2>/dev/null | openssl x509 -noout -enddate | cut -d= -f2)" +%s) - $(date +%s) ))
  [ "$left" -ge 23 ] || fail "t5: the served leaf has only ${left}s left; it must outlive the failover"
  t0=$(now_ms)
  kill -KILL -- "-$(cat "$E2E_STATE/pids/inj-l0")"
  rm -f "$E2E_STATE/pids/inj-l0"
  wait_for 40 "the survivor takes the Lease" bash -c "[ \"\$('$E2E_KUBECTL' -n vault get lease vault-k8s-leader -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)\" = vault-injector-l1 ]"
  t_lease=$(( $(now_ms) - t0 ))
  wait_for 30 "the new leader publishes a new caBundle" bash -c "! cmp -s <('$E2E_KUBECTL' get mutatingwebhookconfiguration $WEBHOOK -o jsonpath='{.webhooks[0].clientConfig.caBundle}' | base64 -d) '$T/bundle-before'"
  t_bundle=$(( $(now_ms) - t0 ))
  bundle "$T/b"
  awk '/BEGIN CERTIFICATE/{n++} n==2' "$T/b" > "$T/new-ca"
  [ "$(grep -c 'BEGIN CERTIFICATE' "$T/b")" = 2 ] || fail "t5: the new caBundle should hold [old CA, new CA]"
  # Its first CA is the dead leader's: the certificates signed by it stay trusted.
  awk '/BEGIN CERTIFICATE/{n++} n==1' "$T/b" | cmp -s - <(awk '/BEGIN CERTIFICATE/{c=""} {c=c $0 ORS} END{printf "%s", c}' "$T/bundle-before") ||
    fail "t5: the new caBundle does not start with the previous leader's CA"
  wait_for 30 "the new leader serves a leaf of its own CA" \
    curl -fsS --max-time 5 --cacert "$T/new-ca" "https://127.0.0.1:$p1/health/ready"
  t_leaf=$(( $(now_ms) - t0 ))
  trusted "$p1" || fail "t5: the new leader's certificate is not trusted"
  figure "t5: Lease failover after SIGKILL (no Pod deletion): Lease taken in $t_lease ms (bound 19400 ms), caBundle [old, new] in $t_bundle ms, own leaf served in $t_leaf ms"
  [ "$t_lease" -le 19400 ] || fail "t5: the Lease was taken after $t_lease ms, beyond the documented 19.4 s"
  # The new leader manages the certificate: a renewal, written to the Secret, still trusted.
  s_before="$(serial "$p1")"
  t0=$(now_ms)
  wait_for $((LEASE_LIFETIME + 10)) "a renewal after the failover" bash -c "s=\$(openssl s_client -connect 127.0.0.1:$p1 </dev/null 2>/dev/null | openssl x509 -noout -serial | cut -d= -f2); [ -n \"\$s\" ] && [ \"\$s\" != '$s_before' ]"
  curl -fsS --max-time 5 --cacert "$T/new-ca" "https://127.0.0.1:$p1/health/ready" >/dev/null ||
    fail "t5: the renewed leaf is not signed by the new CA"
  wait_for 10 "the renewed leaf is in the Secret" bash -c "[ \"\$('$E2E_KUBECTL' -n vault get secret vault-injector-certs -o jsonpath='{.data.cert}' | base64 -d | openssl x509 -noout -serial)\" = \"\$(openssl s_client -connect 127.0.0.1:$p1 </dev/null 2>/dev/null | openssl x509 -noout -serial)\" ]"
  figure "t5: renewal after the Lease failover served, trusted and shared ($(( $(now_ms) - t0 )) ms after the first leaf was seen)"
  load_stop t5
  e2e_stop inj-l1
  sed -i '1,$d' "$T/backends"
}

# kubelet_swap DIR NAME CERT KEY: put CERT and KEY in DIR/..NAME and re-point DIR/..data at it
# with one rename, as the kubelet updates a Secret volume.
kubelet_swap() {
  local dir="$1" name="$2"
  mkdir -p "$dir/..$name"
  cp "$3" "$dir/..$name/tls.crt"
  cp "$4" "$dir/..$name/tls.key"
  ln -sfn "..$name" "$dir/..data_tmp"
  mv -T "$dir/..data_tmp" "$dir/..data"
}

t6_file_mode_swap() {
  e2e_say "=== t6: file mode, kubelet-style swap of the certificate files under load"
  local dir="$T/file-tls" port pki="$E2E_STATE/pki" want_serial t0 elapsed
  e2e_cert t6-a vault-agent-injector-svc "" "IP:127.0.0.1,DNS:vault-agent-injector-svc.vault.svc"
  e2e_cert t6-b vault-agent-injector-svc "" "IP:127.0.0.1,DNS:vault-agent-injector-svc.vault.svc"
  mkdir -p "$dir"
  kubelet_swap "$dir" first "$pki/t6-a.crt" "$pki/t6-a.key"
  ln -sfn ..data/tls.crt "$dir/tls.crt"
  ln -sfn ..data/tls.key "$dir/tls.key"
  # The webhook trusts the test CA, which signed both leaves.
  KUBECTL patch mutatingwebhookconfiguration "$WEBHOOK" --type=json \
    -p "[{\"op\":\"replace\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$(base64 -w0 < "$pki/ca.crt")\"}]" >&2
  port="$(e2e_free_port)"
  e2e_spawn inj-file env -i PATH=/usr/bin:/bin AGENT_INJECT_LISTEN="127.0.0.1:$port" \
    AGENT_INJECT_VAULT_ADDR=http://127.0.0.1:8200 AGENT_INJECT_LOG_LEVEL=debug \
    AGENT_INJECT_TLS_CERT_FILE="$dir/tls.crt" AGENT_INJECT_TLS_KEY_FILE="$dir/tls.key" \
    "$E2E_INJECTOR_BIN" agent-inject "2>&1"
  wait_for 30 "the file-mode injector is ready" curl -fsS --max-time 5 --cacert "$pki/ca.crt" "https://127.0.0.1:$port/health/ready"
  echo "$port" > "$T/backends"
  [ "$(serial "$port")" = "$(openssl x509 -in "$pki/t6-a.crt" -noout -serial | cut -d= -f2)" ] || fail "t6: not serving the first leaf"

  load_start t6
  sleep 2
  want_serial="$(openssl x509 -in "$pki/t6-b.crt" -noout -serial | cut -d= -f2)"
  t0=$(now_ms)
  kubelet_swap "$dir" second "$pki/t6-b.crt" "$pki/t6-b.key"
  until [ "$(serial "$port")" = "$want_serial" ]; do
    [ $(( $(now_ms) - t0 )) -lt 10000 ] || fail "t6: the swapped certificate was not served within 10 s"
    sleep 0.05
  done
  elapsed=$(( $(now_ms) - t0 ))
  figure "t6: kubelet-style ..data swap served to new connections after $elapsed ms (poll step 50 ms plus one handshake)"
  sleep 2
  # A mismatched pair (the first leaf with the second key): logged, the current leaf stays.
  kubelet_swap "$dir" broken "$pki/t6-a.crt" "$pki/t6-b.key"
  wait_for 10 "the mismatched pair is logged" grep -q 'keeping the current one' "$E2E_STATE/logs/inj-file.log"
  sleep 1
  [ "$(serial "$port")" = "$want_serial" ] || fail "t6: a mismatched pair replaced the serving certificate"
  curl -fsS --max-time 5 --cacert "$pki/ca.crt" "https://127.0.0.1:$port/health/ready" >/dev/null || fail "t6: not serving after the bad swap"
  figure "t6: mismatched cert/key pair logged; the previous leaf kept serving"
  sleep 2
  load_stop t6
  e2e_stop inj-file
  sed -i '1,$d' "$T/backends"
}

ran=0
want t1 && { t1_one_replica; ran=$((ran + 1)); }
if want t2; then
  [ -s "$T/backends" ] || t1_one_replica
  t2_rotation_under_load
  ran=$((ran + 1))
fi
want t1 && ! want t2 && { e2e_stop inj-single; sed -i '1,$d' "$T/backends"; }
want t3 && { t3_two_replicas_failover; ran=$((ran + 1)); }
if want t4; then
  [ -n "$(lock_owner)" ] || t3_two_replicas_failover
  t4_stale_locks
  ran=$((ran + 1))
fi
want t5 && { t5_lease_failover; ran=$((ran + 1)); }
want t6 && { t6_file_mode_swap; ran=$((ran + 1)); }
e2e_say "tls: $ran tests passed"
