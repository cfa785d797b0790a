#!/usr/bin/env bash
# Shared functions of the local e2e harness (sourced by run.sh, cluster.sh and ctl.sh).
#
# Everything runs on 127.0.0.1 with free ports, all state lives under $E2E_STATE (a temp dir),
# and every process the harness starts is recorded in $E2E_STATE/pids/<name> so that
# e2e_teardown stops exactly those processes (by pid, in reverse start order).
#
# Components (paths come from bin.sh): etcd, kube-apiserver, kube-controller-manager, kubectl,
# OpenBao (`bao server -dev`), PostgreSQL (initdb/pg_ctl as the `postgres` user), and the
# injector under test (run like its Deployment would run it, see e2e_injector_start).

E2E_DIR="${E2E_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
E2E_ROOT="${E2E_ROOT:-$(cd "$E2E_DIR/../.." && pwd)}"
# shellcheck source=bin.sh
. "$E2E_DIR/bin.sh"

# Loopback traffic must never go through a proxy.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

e2e_say() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
e2e_die() { e2e_say "ERROR: $*"; return 1; }

# ---------------------------------------------------------------------------------------------
# state, ports, processes

e2e_state_init() {
  if [ -z "${E2E_STATE:-}" ]; then
    E2E_STATE="$(mktemp -d "${TMPDIR:-/tmp}/vault-injector-e2e.XXXXXX")"
  fi
  mkdir -p "$E2E_STATE"/{pids,logs,pki,run}
  chmod 755 "$E2E_STATE"
  export E2E_STATE
  : > "$E2E_STATE/started"
}

# e2e_free_port: a TCP port on 127.0.0.1 that was free a moment ago. Ports handed out in one
# harness run are remembered so that two components never get the same one.
e2e_free_port() {
  local p
  for _ in $(seq 1 50); do
    p="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
    if ! grep -qx "$p" "$E2E_STATE/ports" 2>/dev/null; then
      echo "$p" >> "$E2E_STATE/ports"
      echo "$p"
      return 0
    fi
  done
  return 1
}

# e2e_spawn NAME CMD...: start CMD in the background in its own session (so that its whole
# process group can be signalled), output to logs/NAME.log, pid to pids/NAME.
e2e_spawn() {
  local name="$1"
  shift
  setsid "$@" >>"$E2E_STATE/logs/$name.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$E2E_STATE/pids/$name"
  grep -qx "$name" "$E2E_STATE/started" || echo "$name" >> "$E2E_STATE/started"
  e2e_say "started $name (pid $pid, log $E2E_STATE/logs/$name.log)"
}

e2e_alive() {
  local f="$E2E_STATE/pids/$1"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# e2e_stop NAME: SIGTERM the process group started by e2e_spawn, SIGKILL after 15 s.
e2e_stop() {
  local name="$1" f="$E2E_STATE/pids/$1" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      e2e_say "$name did not stop on SIGTERM; SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

# e2e_teardown: stop everything started in this state dir, newest first.
e2e_teardown() {
  [ -n "${E2E_STATE:-}" ] && [ -d "$E2E_STATE" ] || return 0
  local name
  for name in $(tac "$E2E_STATE/started" 2>/dev/null); do
    case "$name" in
      postgres) e2e_pg_stop ;;
      *) e2e_stop "$name" ;;
    esac
  done
  : > "$E2E_STATE/started"
}

# e2e_wait NAME SECONDS CMD...: retry CMD until it succeeds; fail early if NAME died.
e2e_wait() {
  local name="$1" secs="$2"
  shift 2
  local deadline=$((SECONDS + secs))
  while [ $SECONDS -lt $deadline ]; do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if [ "$name" != - ] && ! e2e_alive "$name"; then
      e2e_say "$name exited; last log lines:"
      tail -n 40 "$E2E_STATE/logs/$name.log" >&2
      return 1
    fi
    sleep 0.5
  done
  e2e_say "timed out after ${secs}s waiting for $name: $*"
  tail -n 40 "$E2E_STATE/logs/$name.log" >&2 2>/dev/null || true
  return 1
}

e2e_dump_logs() {
  local lines="${1:-80}" f
  for f in "$E2E_STATE"/logs/*.log; do
    [ -f "$f" ] || continue
    printf '\n===== %s (last %s lines) =====\n' "$(basename "$f")" "$lines"
    tail -n "$lines" "$f"
  done
}

# ---------------------------------------------------------------------------------------------
# test PKI (openssl): one CA signs every serving and client certificate.

# e2e_cert NAME CN [O] [SAN]: key NAME.key + cert NAME.crt signed by ca, EC P-256.
e2e_cert() {
  local name="$1" cn="$2" org="${3:-}" san="${4:-}" d="$E2E_STATE/pki"
  local subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/$name.key" 2>/dev/null
  openssl req -new -key "$d/$name.key" -subj "$subj" -out "$d/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } > "$d/$name.ext"
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -sha256 -extfile "$d/$name.ext" -out "$d/$name.crt" 2>/dev/null
  rm -f "$d/$name.csr" "$d/$name.ext"
}

e2e_pki() {
  local d="$E2E_STATE/pki"
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$d/ca.key" -subj "/CN=vault-injector-e2e-ca" -days 2 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$d/ca.crt" 2>/dev/null
  e2e_cert apiserver kube-apiserver "" \
    "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.0.0.1${E2E_NODE_IP:+,IP:$E2E_NODE_IP}"
  e2e_cert admin e2e-admin system:masters
  e2e_cert kcm system:kube-controller-manager
  e2e_cert injector vault-agent-injector-svc "" \
    "IP:127.0.0.1,DNS:localhost,DNS:vault-agent-injector-svc,DNS:vault-agent-injector-svc.vault,DNS:vault-agent-injector-svc.vault.svc"
  # service-account token signing key pair (RS256)
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  chmod 644 "$d"/*.crt "$d/sa.pub"
  chmod 600 "$d"/*.key
}

# e2e_kubeconfig FILE USER_CERT_NAME | --token TOKEN
e2e_kubeconfig() {
  local file="$1" d="$E2E_STATE/pki" user
  shift
  if [ "$1" = --token ]; then
    user="    token: $2"
  else
    user="    client-certificate: $d/$1.crt
    client-key: $d/$1.key"
  fi
  cat > "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:$E2E_API_PORT
    certificate-authority: $d/ca.crt
users:
- name: e2e
  user:
$user
contexts:
- name: e2e
  context: {cluster: e2e, user: e2e}
current-context: e2e
EOF
  chmod 600 "$file"
}

# ---------------------------------------------------------------------------------------------
# control plane

# e2e_etcd_start [CLIENT_PORT PEER_PORT]: fresh ports, or these (a restart on the same data dir).
# shellcheck disable=SC2120 # the ports are passed by chaos.sh, which restarts etcd
e2e_etcd_start() {
  E2E_ETCD_PORT="${1:-$(e2e_free_port)}"
  E2E_ETCD_PEER_PORT="${2:-$(e2e_free_port)}"
  mkdir -p "$E2E_STATE/etcd"
  chmod 700 "$E2E_STATE/etcd"
  e2e_spawn etcd "$E2E_ETCD" \
    --name e2e --data-dir "$E2E_STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$E2E_ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$E2E_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$E2E_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$E2E_ETCD_PEER_PORT" \
    --initial-cluster "e2e=http://127.0.0.1:$E2E_ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes=1073741824 --log-level=warn
  e2e_wait etcd 60 curl -fsS "http://127.0.0.1:$E2E_ETCD_PORT/health"
}

# e2e_apiserver_start [PORT]: a fresh port, or this one (a restart the clients do not notice).
# E2E_API_BIND / E2E_API_ADVERTISE (default 127.0.0.1) and E2E_APISERVER_EXTRA (more flags,
# space-separated) are set by the node tier (node.sh).
# shellcheck disable=SC2120 # the port is passed by chaos.sh and node-lib.sh
e2e_apiserver_start() {
  E2E_API_PORT="${1:-$(e2e_free_port)}"
  E2E_API_URL="https://127.0.0.1:$E2E_API_PORT"
  # The issuer is also what OpenBao's kubernetes auth is told (scenario 5).
  E2E_SA_ISSUER="$E2E_API_URL"
  local d="$E2E_STATE/pki"
  mkdir -p "$E2E_STATE/apiserver"
  e2e_spawn kube-apiserver "$E2E_KUBE_APISERVER" \
    --etcd-servers="http://127.0.0.1:$E2E_ETCD_PORT" \
    --bind-address="${E2E_API_BIND:-127.0.0.1}" --advertise-address="${E2E_API_ADVERTISE:-127.0.0.1}" \
    --secure-port="$E2E_API_PORT" \
    --cert-dir="$E2E_STATE/apiserver" \
    --tls-cert-file="$d/apiserver.crt" --tls-private-key-file="$d/apiserver.key" \
    --client-ca-file="$d/ca.crt" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer="$E2E_SA_ISSUER" \
    --service-account-key-file="$d/sa.pub" \
    --service-account-signing-key-file="$d/sa.key" \
    --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,ResourceQuota,MutatingAdmissionPolicy,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook \
    --service-cluster-ip-range=10.0.0.0/24 \
    --endpoint-reconciler-type=none \
    --allow-privileged=true \
    --profiling=false \
    ${E2E_APISERVER_EXTRA:-} \
    --v="${E2E_APISERVER_V:-1}"
  e2e_kubeconfig "$E2E_STATE/admin.kubeconfig" admin
  e2e_kubeconfig "$E2E_STATE/kcm.kubeconfig" kcm
  export KUBECONFIG="$E2E_STATE/admin.kubeconfig"
  e2e_wait kube-apiserver 120 "$E2E_KUBECTL" get --raw /readyz
}

E2E_KCM_CONTROLLERS="${E2E_KCM_CONTROLLERS:-serviceaccount-token-controller,serviceaccount-controller,namespace-controller,garbage-collector-controller,deployment-controller,replicaset-controller,root-ca-certificate-publisher-controller}"

e2e_kcm_start() {
  local d="$E2E_STATE/pki"
  e2e_spawn kube-controller-manager "$E2E_KUBE_CONTROLLER_MANAGER" \
    --kubeconfig="$E2E_STATE/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=0 \
    --leader-elect=false \
    --controllers="$E2E_KCM_CONTROLLERS" \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$d/sa.key" \
    --root-ca-file="$d/ca.crt" \
    --v="${E2E_KCM_V:-1}"
  # ready once the service-account controller has made the `default` SA of `default`
  e2e_wait kube-controller-manager 120 "$E2E_KUBECTL" -n default get serviceaccount default
}

e2e_cluster_start() {
  e2e_pki
  e2e_etcd_start || return 1
  e2e_apiserver_start || return 1
  e2e_kcm_start || return 1
  e2e_say "cluster ready: KUBECONFIG=$KUBECONFIG ($E2E_API_URL)"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL: a private cluster owned by the `postgres` system user (the server refuses to run
# as root). Admin user for OpenBao: CREATEROLE, not superuser, owner of database `orders`.

E2E_PG_ADMIN_USER="${E2E_PG_ADMIN_USER:-vaultadmin}"
E2E_PG_DATABASE="${E2E_PG_DATABASE:-orders}"

e2e_pg_user() {
  if id postgres >/dev/null 2>&1; then echo postgres; else echo nobody; fi
}

e2e_pg_start() {
  local u dir
  u="$(e2e_pg_user)"
  dir="$E2E_STATE/postgres"
  E2E_PG_PORT="${E2E_PG_PORT:-$(e2e_free_port)}"
  E2E_PG_HOST="${E2E_PG_HOST:-127.0.0.1}"
  E2E_PG_ADMIN_PASSWORD="$(openssl rand -hex 16)"
  mkdir -p "$dir"
  chown "$u" "$dir"
  chmod 700 "$dir"
  if ! runuser -u "$u" -- "$E2E_PG_BIN_DIR/initdb" -D "$dir/data" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C >>"$E2E_STATE/logs/postgres.log" 2>&1; then
    tail -n 20 "$E2E_STATE/logs/postgres.log" >&2
    return 1
  fi
  # initdb allows TCP logins from 127.0.0.1 only; pods and the node address are other hosts.
  echo "host all all all scram-sha-256" >> "$dir/data/pg_hba.conf"
  echo postgres >> "$E2E_STATE/started"
  touch "$E2E_STATE/logs/postgres.log"
  chown "$u" "$E2E_STATE/logs/postgres.log"
  runuser -u "$u" -- "$E2E_PG_BIN_DIR/pg_ctl" -D "$dir/data" -w -t 60 -l "$E2E_STATE/logs/postgres.log" \
    -o "-c listen_addresses=$E2E_PG_HOST -c port=$E2E_PG_PORT -c unix_socket_directories=$dir -c fsync=off" \
    start >/dev/null || { tail -n 20 "$E2E_STATE/logs/postgres.log" >&2; return 1; }
  E2E_PG_SOCKET_DIR="$dir"
  e2e_say "started postgres on $E2E_PG_HOST:$E2E_PG_PORT (data $dir/data)"
  # Bootstrap as the superuser over the unix socket, then set up as the admin over TCP.
  e2e_psql_super -v ON_ERROR_STOP=1 -q <<EOF || return 1
CREATE ROLE "$E2E_PG_ADMIN_USER" WITH LOGIN CREATEROLE NOSUPERUSER PASSWORD '$E2E_PG_ADMIN_PASSWORD';
CREATE DATABASE "$E2E_PG_DATABASE" OWNER "$E2E_PG_ADMIN_USER";
EOF
  PGPASSWORD="$E2E_PG_ADMIN_PASSWORD" "$E2E_PG_BIN_DIR/psql" -X -q -v ON_ERROR_STOP=1 \
    "host=$E2E_PG_HOST port=$E2E_PG_PORT user=$E2E_PG_ADMIN_USER dbname=$E2E_PG_DATABASE" <<'EOF' || return 1
CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, quantity integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO orders (item, quantity) VALUES ('widget', 3), ('gadget', 1);
EOF
}

e2e_psql_super() {
  runuser -u "$(e2e_pg_user)" -- "$E2E_PG_BIN_DIR/psql" -X -h "$E2E_PG_SOCKET_DIR" -p "$E2E_PG_PORT" -U postgres -d postgres "$@"
}

e2e_pg_stop() {
  local dir="$E2E_STATE/postgres/data"
  [ -f "$dir/postmaster.pid" ] || return 0
  runuser -u "$(e2e_pg_user)" -- "$E2E_PG_BIN_DIR/pg_ctl" -D "$dir" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------------
# OpenBao dev server (in-memory storage, known root token).

# E2E_BAO_HOST (default 127.0.0.1) and E2E_BAO_PORT: where it listens (the node tier gives the
# node's address, which pods reach).
e2e_bao_start() {
  E2E_BAO_PORT="${E2E_BAO_PORT:-$(e2e_free_port)}"
  E2E_VAULT_ADDR="http://${E2E_BAO_HOST:-127.0.0.1}:$E2E_BAO_PORT"
  E2E_VAULT_TOKEN="${E2E_VAULT_TOKEN:-e2e-root-token}"
  mkdir -p "$E2E_STATE/openbao"
  # HOME: the dev server writes ~/.vault-token
  e2e_spawn openbao env HOME="$E2E_STATE/openbao" "$E2E_BAO" server -dev \
    -dev-root-token-id="$E2E_VAULT_TOKEN" \
    -dev-listen-address="${E2E_BAO_HOST:-127.0.0.1}:$E2E_BAO_PORT"
  e2e_wait openbao 60 curl -fsS "$E2E_VAULT_ADDR/v1/sys/health"
}

# ---------------------------------------------------------------------------------------------
# webhook-config/ applied as a cluster admin would, with only the clientConfig rewritten.

# e2e_webhook_config_rewrite URL CA_FILE [FAILURE_POLICY] < manifest > manifest
e2e_webhook_config_rewrite() {
  python3 "$E2E_DIR/rewrite-webhook.py" --url "$1" --ca-file "$2" ${3:+--failure-policy "$3"}
}

e2e_webhook_config_apply() {
  local url="https://127.0.0.1:$E2E_INJECTOR_PORT/mutate" f
  if [ "${E2E_INJECTOR_FROM:-}" = chart ]; then e2e_chart_apply; return; fi
  mkdir -p "$E2E_STATE/webhook-config"
  for f in "$E2E_ROOT"/webhook-config/*.yaml; do
    e2e_webhook_config_rewrite "$url" "$E2E_STATE/pki/ca.crt" < "$f" > "$E2E_STATE/webhook-config/$(basename "$f")" || return 1
  done
  "$E2E_KUBECTL" apply -f "$E2E_STATE/webhook-config/" >&2
}

# E2E_INJECTOR_FROM=chart: charts/vault-injector instead of webhook-config/. `helm template`
# (release and namespace `vault`, the apiserver's version) with values that fit the harness:
# OpenBao as externalVaultAddr, opt-in namespaces, metrics on, the loopback port as
# injector.port, disk-mode certs (certs.secretName; the chart mounts them at
# /etc/webhook/certs). Every rendered object but the Deployment (and the ServiceMonitor) is
# applied, the webhook's clientConfig rewritten as above; chart-injector.py takes the
# Deployment's container env and args (fieldRefs resolved, $(VAR) expanded as the kubelet
# does), securityContext and ServiceAccount, which e2e_injector_start then uses unchanged.
E2E_CHART_POD_NAME=vault-agent-injector-5c4f8d7b9-e2e00

e2e_chart_apply() {
  local c="$E2E_STATE/chart" url="https://127.0.0.1:$E2E_INJECTOR_PORT/mutate"
  [ -z "${E2E_INJECTOR_DIRECT:-}" ] || { e2e_die "E2E_INJECTOR_FROM=chart needs the pod-like injector (unset E2E_INJECTOR_DIRECT)"; return 1; }
  [ -n "${E2E_HELM:-}" ] || e2e_bin_all helm
  mkdir -p "$c"
  "$E2E_HELM" template vault "$E2E_ROOT/charts/vault-injector" --namespace vault \
    --kube-version "${E2E_K8S_VERSION#v}" \
    --set-string injector.externalVaultAddr="$E2E_VAULT_ADDR" \
    --set injector.namespaceOptIn=true \
    --set injector.metrics.enabled=true \
    --set injector.port="$E2E_INJECTOR_PORT" \
    --set injector.certs.secretName=vault-injector-e2e-tls \
    --set-string injector.logLevel="${E2E_INJECTOR_LOG_LEVEL:-debug}" \
    > "$c/rendered.yaml" || return 1
  python3 "$E2E_DIR/chart-injector.py" "$c/rendered.yaml" "$c" "$E2E_CHART_POD_NAME" \
    KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$E2E_API_PORT" \
    KUBERNETES_SERVICE_PORT_HTTPS="$E2E_API_PORT" || return 1
  e2e_webhook_config_rewrite "$url" "$E2E_STATE/pki/ca.crt" < "$c/apply.yaml" > "$c/apply-rewritten.yaml" || return 1
  # as `helm install --create-namespace` would
  "$E2E_KUBECTL" create namespace vault >&2 || return 1
  "$E2E_KUBECTL" apply -f "$c/apply-rewritten.yaml" >&2
}

# ---------------------------------------------------------------------------------------------
# The injector under test. It is run the way its Deployment runs it: as uid 100, with the
# service-account token of `vault/vault-agent-injector` (the ServiceAccount from webhook-config/, so
# the RBAC there is what it gets) mounted at the in-cluster path, KUBERNETES_SERVICE_HOST/PORT,
# NAMESPACE and POD_NAME, and the AGENT_INJECT_* settings. Only the listen address and the TLS
# files differ (the Deployment uses :8080 and auto TLS). E2E_INJECTOR_DIRECT=1 runs it as a
# plain process with a KUBECONFIG for that service account instead.

e2e_injector_prepare() {
  E2E_INJECTOR_PORT="${E2E_INJECTOR_PORT:-$(e2e_free_port)}"
  local sa="$E2E_STATE/injector/serviceaccount" token sa_name=vault-agent-injector
  if [ "${E2E_INJECTOR_FROM:-}" = chart ]; then
    # shellcheck source=/dev/null
    sa_name="$(. "$E2E_STATE/chart/pod.sh" && echo "$CHART_SA")"
  fi
  mkdir -p "$sa" "$E2E_STATE/injector/tls"
  cp "$E2E_STATE/pki/injector.crt" "$E2E_STATE/injector/tls/tls.crt"
  cp "$E2E_STATE/pki/injector.key" "$E2E_STATE/injector/tls/tls.key"
  cp "$E2E_STATE/pki/ca.crt" "$E2E_STATE/injector/tls/ca.crt"
  chown -R 100:1000 "$E2E_STATE/injector/tls"
  chmod 0750 "$E2E_STATE/injector/tls"
  e2e_wait - 60 "$E2E_KUBECTL" -n vault get serviceaccount "$sa_name" || return 1
  token="$("$E2E_KUBECTL" -n vault create token "$sa_name" --duration=24h)" || return 1
  printf '%s' "$token" > "$sa/token"
  cp "$E2E_STATE/pki/ca.crt" "$sa/ca.crt"
  printf vault > "$sa/namespace"
  chmod 0644 "$sa"/*
  e2e_kubeconfig "$E2E_STATE/injector.kubeconfig" --token "$token"
  chmod 0644 "$E2E_STATE/injector.kubeconfig"
  # saved for ctl.sh (scenario 4 stops and restarts the injector)
  e2e_save_env
}

e2e_injector_start() {
  local tls="/var/run/vault-injector/tls"
  [ -n "${E2E_INJECTOR_DIRECT:-}" ] && tls="$E2E_STATE/injector/tls"
  if [ "${E2E_INJECTOR_FROM:-}" = chart ]; then
    e2e_injector_spawn_chart injector || return 1
  else
    # E2E_INJECTOR_EXTRA_ENV: space-separated VAR=VALUE words for this start only (scenarios
    # that restart the injector with an opt-in setting, see start_injector_with_env).
    # shellcheck disable=SC2086
    e2e_injector_spawn injector "$E2E_INJECTOR_PORT" \
      AGENT_INJECT_TLS_CERT_FILE="$tls/tls.crt" AGENT_INJECT_TLS_KEY_FILE="$tls/tls.key" \
      ${E2E_INJECTOR_EXTRA_ENV:-} || return 1
  fi
  e2e_wait injector 60 curl -fsS --cacert "$E2E_STATE/pki/ca.crt" \
    "https://127.0.0.1:$E2E_INJECTOR_PORT/health/ready"
}

# e2e_injector_spawn NAME PORT [VAR=VALUE...]: start an injector process NAME listening on
# 127.0.0.1:PORT, with the Deployment's environment plus VAR=VALUE (later ones win; TLS is
# auto unless AGENT_INJECT_TLS_CERT_FILE/KEY_FILE are given). Does not wait for it.
e2e_injector_spawn() {
  local name="$1" port="$2" bin="${E2E_INJECTOR_BIN:?}" tls="$E2E_STATE/injector/tls"
  shift 2
  local -a envs=(
    PATH=/e2e-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOSTNAME="$name"
    NAMESPACE=vault
    POD_NAME=vault-injector-e2e
    AGENT_INJECT_LISTEN="127.0.0.1:$port"
    AGENT_INJECT_LOG_LEVEL="${E2E_INJECTOR_LOG_LEVEL:-debug}"
    AGENT_INJECT_LOG_FORMAT="${E2E_INJECTOR_LOG_FORMAT:-standard}"
    AGENT_INJECT_VAULT_ADDR="${E2E_VAULT_ADDR:-http://127.0.0.1:8200}"
    AGENT_INJECT_VAULT_AUTH_PATH=auth/kubernetes
    AGENT_INJECT_VAULT_IMAGE="${E2E_AGENT_IMAGE:-openbao/openbao:$E2E_OPENBAO_VERSION}"
    AGENT_INJECT_DEFAULT_TEMPLATE=map
    AGENT_INJECT_TELEMETRY_PATH=/metrics
    "$@"
  )
  if [ -n "${E2E_INJECTOR_DIRECT:-}" ]; then
    e2e_spawn "$name" env -i "${envs[@]}" KUBECONFIG="$E2E_STATE/injector.kubeconfig" \
      "$bin" agent-inject "2>&1"
  else
    e2e_spawn "$name" env -i "${envs[@]}" \
      KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$E2E_API_PORT" \
      KUBERNETES_SERVICE_PORT_HTTPS="$E2E_API_PORT" \
      "$E2E_DIR/fake-kubelet.sh" --user 100:1000 --no-new-privs --read-only-root \
        --bind "$bin:/e2e-bin/vault-injector:ro" \
        --bind "$tls:/var/run/vault-injector/tls:ro" \
        --bind "$E2E_STATE/injector/serviceaccount:/var/run/secrets/kubernetes.io/serviceaccount:ro" \
        -- /e2e-bin/vault-injector agent-inject "2>&1"
  fi
}

# e2e_injector_spawn_chart NAME: the chart's container (E2E_INJECTOR_FROM=chart): exactly the
# env and args chart-injector.py took from the rendered Deployment, plus what the kubelet and
# the image add (PATH, HOSTNAME, KUBERNETES_SERVICE_*); its securityContext; the certificate
# files at the Secret volume's mountPath; the chart ServiceAccount's token. Does not wait.
e2e_injector_spawn_chart() {
  local name="$1" bin="${E2E_INJECTOR_BIN:?}" c="$E2E_STATE/chart"
  local CHART_SA CHART_USER CHART_NNP CHART_RO_ROOT CHART_CERTS_DIR
  # shellcheck source=/dev/null
  . "$c/pod.sh"
  local -a envs args kubelet=(--user "$CHART_USER")
  mapfile -d '' -t envs < "$c/env"
  mapfile -d '' -t args < "$c/args"
  [ -n "$CHART_NNP" ] && kubelet+=(--no-new-privs)
  [ -n "$CHART_RO_ROOT" ] && kubelet+=(--read-only-root)
  [ -n "$CHART_CERTS_DIR" ] && kubelet+=(--bind "$E2E_STATE/injector/tls:$CHART_CERTS_DIR:ro")
  e2e_spawn "$name" env -i \
    PATH=/e2e-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOSTNAME="$E2E_CHART_POD_NAME" \
    KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$E2E_API_PORT" \
    KUBERNETES_SERVICE_PORT_HTTPS="$E2E_API_PORT" \
    "${envs[@]}" \
    "$E2E_DIR/fake-kubelet.sh" "${kubelet[@]}" \
      --bind "$bin:/e2e-bin/vault-injector:ro" \
      --bind "$E2E_STATE/injector/serviceaccount:/var/run/secrets/kubernetes.io/serviceaccount:ro" \
      -- /e2e-bin/vault-injector "${args[@]}"
}

e2e_injector_stop() { e2e_stop injector; }

# ---------------------------------------------------------------------------------------------
# the scenario runner (run.sh, node.sh)

# e2e_run_scenarios CMD...: run every test of the test binary that `CMD -- --list` lists, one at
# a time, skipping those that match none of the words in the array E2E_FILTERS (when it has
# any). Each prints `=== scenario NAME: ok` or `: FAILED`, and a failed one prints what every
# component logged while it ran. NAME is the test's name without its module path, with dashes
# for underscores when E2E_DASHED_NAMES is set. Adds to the globals passed, failed and
# failed_names; E2E_ALIVE lists the components that must survive every scenario.
e2e_run_scenarios() {
  local -a cmd=("$@") tests
  local t name keep f off ts
  mapfile -t tests < <("${cmd[@]}" -q -- --list 2>/dev/null | sed -n 's/: test$//p' | sort)
  [ "${#tests[@]}" -gt 0 ] || { e2e_die "no scenarios found"; return 1; }
  for t in "${tests[@]}"; do
    name="${t##*::}"
    [ -n "${E2E_DASHED_NAMES:-}" ] && name="${name//_/-}"
    if [ "${#E2E_FILTERS[@]}" -gt 0 ]; then
      keep=""
      for f in "${E2E_FILTERS[@]}"; do [[ "$t" == *"$f"* || "$name" == *"$f"* ]] && keep=1; done
      [ -n "$keep" ] || continue
    fi
    # remember where every log ends, to print only what was logged during this scenario
    local -A offsets=()
    for f in "$E2E_STATE"/logs/*.log; do offsets["$f"]=$(stat -c %s "$f"); done
    e2e_say "=== scenario $name"
    ts=$SECONDS
    if "${cmd[@]}" -q -- --exact "$t" --test-threads=1 --nocapture; then
      passed=$((passed + 1))
      e2e_say "=== scenario $name: ok ($((SECONDS - ts))s)"
    else
      failed=$((failed + 1))
      failed_names+=("$name")
      e2e_say "=== scenario $name: FAILED ($((SECONDS - ts))s); component logs during the scenario:"
      for f in "$E2E_STATE"/logs/*.log; do
        off="${offsets[$f]:-0}"
        printf '\n----- %s (from byte %s, last 150 lines) -----\n' "$(basename "$f")" "$off"
        tail -c +"$((off + 1))" "$f" | tail -n 150
      done
      for f in "$E2E_STATE"/kubelet/*/*.log; do
        [ -f "$f" ] || continue
        printf '\n----- fake kubelet container %s (last 80 lines) -----\n' "${f#"$E2E_STATE"/kubelet/}"
        tail -n 80 "$f"
      done
      # the node tier adds what the cluster says about its pods
      if declare -F e2e_scenario_failed >/dev/null; then e2e_scenario_failed; fi
    fi
    unset offsets
    for f in ${E2E_ALIVE:-}; do
      e2e_alive "$f" || { e2e_say "$f is no longer running"; tail -n 40 "$E2E_STATE/logs/$f.log" >&2; }
    done
  done
}

# ---------------------------------------------------------------------------------------------
# environment handed to the scenarios (and to ctl.sh)

e2e_save_env() {
  local v
  {
    for v in E2E_STATE E2E_ROOT E2E_DIR KUBECONFIG E2E_API_URL E2E_API_PORT E2E_SA_ISSUER \
             E2E_ETCD_PORT E2E_KUBECTL E2E_ETCD E2E_KUBE_APISERVER E2E_KUBE_CONTROLLER_MANAGER \
             E2E_BAO E2E_VAULT E2E_OPENBAO_BIN_DIR E2E_OPENBAO_VERSION E2E_VAULT_ADDR E2E_VAULT_TOKEN \
             E2E_PG_BIN_DIR E2E_PG_HOST E2E_PG_PORT E2E_PG_ADMIN_USER E2E_PG_ADMIN_PASSWORD \
             E2E_PG_DATABASE E2E_PG_SOCKET_DIR E2E_INJECTOR_BIN E2E_INJECTOR_PORT E2E_INJECTOR_DIRECT \
             E2E_INJECTOR_FROM; do
      [ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
    done
    if [ -n "${E2E_INJECTOR_PORT:-}" ]; then
      printf 'export E2E_INJECTOR_METRICS_URL=%q\n' "https://127.0.0.1:$E2E_INJECTOR_PORT/metrics"
      printf 'export E2E_INJECTOR_CA_FILE=%q\n' "$E2E_STATE/pki/ca.crt"
      printf 'export E2E_INJECTOR_STOP_CMD=%q\n' "$E2E_DIR/ctl.sh injector-stop"
      printf 'export E2E_INJECTOR_START_CMD=%q\n' "$E2E_DIR/ctl.sh injector-start"
    fi
    printf 'export E2E_FAKE_KUBELET=%q\n' "$E2E_DIR/fake-kubelet.sh"
    printf 'export E2E_LOG_DIR=%q\n' "$E2E_STATE/logs"
  } > "$E2E_STATE/env"
}

# ---------------------------------------------------------------------------------------------
# Auto-TLS stacks (tls.sh, chaos.sh)

# e2e_autotls_stack DIR: the cluster, webhook-config/ with an empty caBundle and failurePolicy
# Fail pointing at a TCP proxy (tls/tcp-proxy.py, the Service: round robin per connection over
# the ports listed in DIR/backends, a refusing backend skipped), and the leader-elector RBAC.
# The Deployment from webhook-config/ would only make Pending pods here: the tests run the
# injector replicas themselves. Sets PROXY_PORT (also E2E_INJECTOR_PORT) and HOSTS (the auto-TLS
# hosts of the stock chart, plus 127.0.0.1).
e2e_autotls_stack() {
  local dir="$1" f
  e2e_cluster_start || return 1
  PROXY_PORT="$(e2e_free_port)"
  E2E_INJECTOR_PORT="$PROXY_PORT"
  : > "$dir/empty-ca"
  mkdir -p "$E2E_STATE/webhook-config"
  for f in "$E2E_ROOT"/webhook-config/*.yaml; do
    e2e_webhook_config_rewrite "https://127.0.0.1:$PROXY_PORT/mutate" "$dir/empty-ca" Fail \
      < "$f" > "$E2E_STATE/webhook-config/$(basename "$f")"
  done
  "$E2E_KUBECTL" apply -f "$E2E_STATE/webhook-config/" >&2 || return 1
  "$E2E_KUBECTL" apply -f "$E2E_DIR/tls/leader-elector-rbac.yaml" >&2 || return 1
  "$E2E_KUBECTL" -n vault delete deployment vault-agent-injector --wait=false >&2 || true
  e2e_injector_prepare || return 1
  : > "$dir/backends"
  e2e_spawn tcp-proxy python3 "$E2E_DIR/tls/tcp-proxy.py" "$PROXY_PORT" "$dir/backends"
  export HOSTS="127.0.0.1,vault-agent-injector-svc,vault-agent-injector-svc.vault,vault-agent-injector-svc.vault.svc"
}

# e2e_ca_bundle WEBHOOK FILE: the webhook configuration's caBundle, decoded into FILE.
e2e_ca_bundle() {
  "$E2E_KUBECTL" get mutatingwebhookconfiguration "$1" -o jsonpath='{.webhooks[0].clientConfig.caBundle}' |
    base64 -d > "$2" 2>/dev/null
}

# e2e_trusted WEBHOOK DIR PORT: the replica on PORT answers /health/ready with a certificate
# that the webhook's caBundle verifies.
e2e_trusted() {
  e2e_ca_bundle "$1" "$2/bundle-$3" && [ -s "$2/bundle-$3" ] &&
    curl -fsS --max-time 5 --cacert "$2/bundle-$3" "https://127.0.0.1:$3/health/ready" >/dev/null
}

# e2e_leaf_serial PORT: the serial of the leaf a new TLS handshake with 127.0.0.1:PORT gets.
e2e_leaf_serial() {
  openssl s_client -connect "127.0.0.1:$1" -servername 127.0.0.1 </dev/null 2>/dev/null |
    openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
