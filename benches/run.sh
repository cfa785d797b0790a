#!/usr/bin/env bash
# Reproduces the results table of BENCHMARKS.md and ends with one summary line:
#   throughput_vs_baseline=0.NN p99_ms_at_half_load=N.NN core_us_typical=N.N rss_peak_mib=N ready_ms=N
#
# Usage: benches/run.sh            (about 5 minutes on 2 cores)
# Knobs (environment): DURATION (s per load run, 10), WARMUP (s, 2), CONCURRENCY (32),
#   H2_CONNECTIONS (4), POD (typical), SERVER_CPU (1), CLIENT_CPU (0), PORT (18443),
#   BASELINE_PORT (18444), CORE_TIME (criterion measurement s, 5), SKIP_CORE (1 to skip),
#   INJECTOR_ONLY (1: only the injector's closed-loop h1/h2 runs and its peak RSS, about 40 s;
#   for comparing builds of the injector side by side).
#
# Every server (baseline and injector) runs pinned to SERVER_CPU, one at a time; the load
# generator runs pinned to CLIENT_CPU. Traffic goes to 127.0.0.1 only, and every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-32}
H2_CONNECTIONS=${H2_CONNECTIONS:-4}
POD=${POD:-typical}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT=${PORT:-18443}
BASELINE_PORT=${BASELINE_PORT:-18444}
CORE_TIME=${CORE_TIME:-5}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
VAULT_ADDR_FLAG=-vault-address=https://127.0.0.1:8200

say() { printf '%s\n' "$*" >&2; }

say "== building (release)"
cargo build --release --quiet --bin vault-injector --example loadgen
# INJECTOR: the binary to measure (default: the one just built), e.g. one built from another commit.
INJECTOR=${INJECTOR:-$TARGET_DIR/release/vault-injector}
LOADGEN=$TARGET_DIR/release/examples/loadgen

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

say "== machine"
say "$(lscpu | grep -m1 'Model name' | sed 's/  */ /g'); $(nproc) CPUs; $(uname -sr); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- certificates: a P-256 CA and a leaf for 127.0.0.1/localhost, as files -------------------
# In a directory of their own, as a Secret's mount: the injector watches the directory of its
# certificate files, so a log written next to them would wake its watcher on every line (a
# measurable share of its closed-loop throughput).
CERTS=$WORK/certs
mkdir "$CERTS"
openssl ecparam -name prime256v1 -genkey -noout -out "$CERTS/ca.key" 2>/dev/null
openssl req -x509 -new -key "$CERTS/ca.key" -subj "/CN=bench CA" -days 1 -out "$CERTS/ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$CERTS/tls.key.ec" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$CERTS/tls.key.ec" -out "$CERTS/tls.key"
openssl req -new -key "$CERTS/tls.key" -subj "/CN=localhost" -out "$CERTS/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$CERTS/ext"
openssl x509 -req -in "$CERTS/tls.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" -CAcreateserial \
    -days 1 -extfile "$CERTS/ext" -out "$CERTS/tls.crt" 2>/dev/null

INJECTOR_CMD=(taskset -c "$SERVER_CPU" "$INJECTOR" serve "-listen=127.0.0.1:$PORT"
    "-tls-cert-file=$CERTS/tls.crt" "-tls-key-file=$CERTS/tls.key" "$VAULT_ADDR_FLAG"
    -telemetry-path=/metrics)
BASELINE_CMD=(taskset -c "$SERVER_CPU" "$LOADGEN" baseline "--listen=127.0.0.1:$BASELINE_PORT"
    "--cert=$CERTS/tls.crt" "--key=$CERTS/tls.key" "--pod=$POD")

field() { # field NAME LINE -> value of NAME=value in LINE
    local re="(^| )$1=([^ ]+)"
    [[ $2 =~ $re ]] && printf '%s' "${BASH_REMATCH[2]}"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

wait_ready() { # wait_ready PORT PATH
    for _ in $(seq 1 500); do
        if curl -sk --cacert "$CERTS/ca.pem" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$1$2" 2>/dev/null | grep -q '^20'; then return 0; fi
        sleep 0.02
    done
    say "server on port $1 did not become ready"; return 1
}

# load LABEL PORT HTTP [RATE] -> prints the loadgen line plus server_cpu_pct
load() {
    local label=$1 port=$2 http=$3 rate=${4:-}
    local args=(run "--url=https://127.0.0.1:$port/mutate" "--ca=$CERTS/ca.pem" "--http=$http"
        "--concurrency=$CONCURRENCY" "--connections=$H2_CONNECTIONS" "--pod=$POD"
        "--duration=$DURATION" "--warmup=$WARMUP" "--label=$label")
    [[ -n $rate ]] && args+=("--rate=$rate")
    local t0 t1 line
    t0=$(cpu_ticks "$SERVER_PID")
    line=$(taskset -c "$CLIENT_CPU" "$LOADGEN" "${args[@]}")
    t1=$(cpu_ticks "$SERVER_PID")
    local hz; hz=$(getconf CLK_TCK)
    # CPU time the server used over warm-up + measurement, as a share of one core.
    local cpu; cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN{print d+w}')" 'BEGIN{printf "%.0f", 100*(b-a)/hz/s}')
    printf '%s server_cpu_pct=%s\n' "$line" "$cpu"
}

# --- 1. core ---------------------------------------------------------------------------------
CORE_US=NA
if [[ ${SKIP_CORE:-0} != 1 && ${INJECTOR_ONLY:-0} != 1 ]]; then
    say "== core benchmarks (criterion, benches/core.rs)"
    taskset -c "$SERVER_CPU" cargo bench --quiet --bench core -- --warm-up-time 1 \
        --measurement-time "$CORE_TIME" 2>&1 | grep -E 'allocs|^(review|mutate)/|time:' >&2 || true
    est() { jq -r '.mean.point_estimate' "$TARGET_DIR/criterion/$1/new/estimates.json"; }
    for f in review mutate; do
        for p in small typical large; do
            say "$(printf '  %-16s mean %8.1f us' "$f/$p" "$(awk -v ns="$(est "$f/$p")" 'BEGIN{print ns/1000}')")"
        done
    done
    CORE_US=$(awk -v ns="$(est mutate/typical)" 'BEGIN{printf "%.1f", ns/1000}')
fi

READY_MS=NA B1="" B2="" F_JSON="" F_POD=""
if [[ ${INJECTOR_ONLY:-0} != 1 ]]; then
# --- 2. start-up -------------------------------------------------------------------------------
say "== start-up: spawn to first 204 on /health/ready (file certificates)"
STARTUP=$(taskset -c "$CLIENT_CPU" "$LOADGEN" startup "--url=https://127.0.0.1:$PORT/health/ready" \
    "--ca=$CERTS/ca.pem" --runs=7 -- "${INJECTOR_CMD[@]}")
say "$STARTUP"
READY_MS=$(field median_ready_ms "$(tail -1 <<<"$STARTUP")")

# --- 3. baseline -------------------------------------------------------------------------------
say "== baseline (same rustls config and hyper settings, precomputed $POD reply)"
"${BASELINE_CMD[@]}" >/dev/null &
SERVER_PID=$!
wait_ready "$BASELINE_PORT" /mutate || true
sleep 0.2
B1=$(load baseline "$BASELINE_PORT" 1); say "$B1"
B2=$(load baseline "$BASELINE_PORT" 2); say "$B2"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=

# The floor of any injector on this stack: the baseline again, but reading each body first,
# as a webhook must to find the pod's annotations (json: parse only; pod: the injector's own
# decode into the typed Pod). HTTP/1.1 only.
say "== floor: the baseline parsing each body before its canned reply"
F_JSON="" F_POD=""
for mode in json pod; do
    "${BASELINE_CMD[@]}" "--decode=$mode" >/dev/null &
    SERVER_PID=$!
    wait_ready "$BASELINE_PORT" /mutate || true
    sleep 0.2
    line=$(load "floor-$mode" "$BASELINE_PORT" 1); say "$line"
    if [[ $mode == json ]]; then F_JSON=$line; else F_POD=$line; fi
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
done

fi

# --- 4. injector -------------------------------------------------------------------------------
say "== injector (logs to a file, telemetry on /metrics)"
"${INJECTOR_CMD[@]}" >"$WORK/injector.out" 2>"$WORK/injector.log" &
SERVER_PID=$!
wait_ready "$PORT" /health/ready
sleep 1
RSS_IDLE_KIB=$(kib "$SERVER_PID" VmRSS)
I1=$(load injector "$PORT" 1); say "$I1"
I2=$(load injector "$PORT" 2); say "$I2"
if [[ ${INJECTOR_ONLY:-0} == 1 ]]; then
    norm() { awk -v r="$(field rps "$1")" -v c="$(field server_cpu_pct "$1")" 'BEGIN{printf "%.0f", (c>0 ? r*100/c : 0)}'; }
    echo "injector_h1_per_core=$(norm "$I1") injector_h2_per_core=$(norm "$I2") rss_peak_kib=$(kib "$SERVER_PID" VmHWM) errors=$(( $(field errors "$I1") + $(field errors "$I2") ))"
    exit 0
fi

# Open loop at half of the injector's closed-loop maximum, per protocol.
HALF1=$(awk -v r="$(field rps "$I1")" 'BEGIN{printf "%.0f", r/2}')
HALF2=$(awk -v r="$(field rps "$I2")" 'BEGIN{printf "%.0f", r/2}')
O1=$(load injector-half "$PORT" 1 "$HALF1"); say "$O1"
O2=$(load injector-half "$PORT" 2 "$HALF2"); say "$O2"
RSS_PEAK_KIB=$(kib "$SERVER_PID" VmHWM)
RSS_AFTER_KIB=$(kib "$SERVER_PID" VmRSS)
METRICS=$(curl -s --cacert "$CERTS/ca.pem" "https://127.0.0.1:$PORT/metrics")
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=

# The same open-loop rates against the baseline, for reference.
"${BASELINE_CMD[@]}" >/dev/null &
SERVER_PID=$!
wait_ready "$BASELINE_PORT" /mutate || true
sleep 0.2
OB1=$(load baseline-same-rate "$BASELINE_PORT" 1 "$HALF1"); say "$OB1"
OB2=$(load baseline-same-rate "$BASELINE_PORT" 2 "$HALF2"); say "$OB2"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=

say "== memory: injector VmRSS idle $((RSS_IDLE_KIB / 1024)) MiB ($RSS_IDLE_KIB kB), VmHWM after load $RSS_PEAK_KIB kB, VmRSS after load $RSS_AFTER_KIB kB"
say "== /metrics after the run (latency histogram and in-flight gauge):"
grep -E '^vault_agent_injector_request_(queue_length|processing_duration_seconds_(count|sum))' <<<"$METRICS" >&2 || say "  (metrics not found)"

errors=0
for l in "$B1" "$B2" "$F_JSON" "$F_POD" "$I1" "$I2" "$O1" "$O2" "$OB1" "$OB2"; do errors=$((errors + $(field errors "$l"))); done
say "== total errors across runs: $errors"

# Throughput per core-second of the server: on a shared 2-core machine the generator (or a
# neighbour) can hold the baseline below one full core, which would flatter a raw rps ratio.
norm() { awk -v r="$(field rps "$1")" -v c="$(field server_cpu_pct "$1")" 'BEGIN{printf "%.0f", (c>0 ? r*100/c : 0)}'; }
RAW=$(awk -v i1="$(field rps "$I1")" -v b1="$(field rps "$B1")" -v i2="$(field rps "$I2")" -v b2="$(field rps "$B2")" \
    'BEGIN{r1=i1/b1; r2=i2/b2; printf "%.2f", (r1<r2?r1:r2)}')
RATIO=$(awk -v i1="$(norm "$I1")" -v b1="$(norm "$B1")" -v i2="$(norm "$I2")" -v b2="$(norm "$B2")" \
    'BEGIN{r1=i1/b1; r2=i2/b2; printf "%.2f", (r1<r2?r1:r2)}')
say "== throughput per server core: baseline h1 $(norm "$B1")/s h2 $(norm "$B2")/s, injector h1 $(norm "$I1")/s h2 $(norm "$I2")/s; raw rps ratio $RAW, per-core ratio $RATIO"
say "== throughput floor per server core, h1: parse only $(norm "$F_JSON")/s (ratio $(awk -v f="$(norm "$F_JSON")" -v b="$(norm "$B1")" 'BEGIN{printf "%.2f", f/b}')), typed pod decode $(norm "$F_POD")/s (ratio $(awk -v f="$(norm "$F_POD")" -v b="$(norm "$B1")" 'BEGIN{printf "%.2f", f/b}'))"
P99=$(awk -v a="$(field p99_ms "$O1")" -v b="$(field p99_ms "$O2")" 'BEGIN{printf "%.2f", (a>b?a:b)}')
RSS_PEAK_MIB=$(( (RSS_PEAK_KIB + 1023) / 1024 ))
READY=$(awk -v r="$READY_MS" 'BEGIN{printf "%.0f", r}')
echo "throughput_vs_baseline=$RATIO p99_ms_at_half_load=$P99 core_us_typical=$CORE_US rss_peak_mib=$RSS_PEAK_MIB ready_ms=$READY"
