# Shared pieces of the server benchmarks (responder-cpu.sh, relay-cpu.sh): sourced, not run.
# Nothing here starts a process that it does not also know how to stop.

# A P-256 CA and a server certificate for localhost / 127.0.0.1 in DIR (ca.pem, server.pem,
# server.key; the same key type as sipwire's development CA), and DIR/tls.cfg for Kamailio's
# tls module pointing at them (no peer verification either way: the bench measures the
# relaying, and sipload verifies the server).
bench_make_tls() {
    local d="$1"
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=sipwire bench CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth,clientAuth" >"$d/ext.cnf"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 30 -extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null
    cat >"$d/tls.cfg" <<EOT
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = $d/server.pem
private_key = $d/server.key

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
EOT
}

# The systems under test from the command line (kamailio, kamailio-default, NAME=/path/to/
# sipwire) into the globals sys_kind[NAME], sys_bin[NAME] and names (in order); $1 is the hint
# printed when Kamailio is missing. Calls the sourcing script's `die`.
bench_parse_systems() {
    local hint="$1" s name kind bin
    shift
    declare -gA sys_kind=() sys_bin=()
    names=()
    for s in "$@"; do
        case "$s" in
            kamailio | kamailio-default)
                command -v kamailio >/dev/null || die "$s: kamailio is not installed ($hint)"
                name="$s" kind="$s" bin="$(command -v kamailio)"
                ;;
            *)
                name="${s%%=*}" kind=sipwire bin="${s#*=}"
                [[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad system name in $s"
                [[ -x "$bin" ]] || die "$name: $bin is not an executable"
                ;;
        esac
        [[ -z "${sys_kind[$name]:-}" ]] || die "system $name given twice"
        sys_kind[$name]="$kind" sys_bin[$name]="$bin"
        names+=("$name")
    done
}

# Busy jiffies of CPU $1 from /proc/stat (all but idle and iowait).
cpu_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# utime+stime jiffies of the given processes, summed (0 for one that is gone).
proc_ticks() {
    local p t=0
    for p in "$@"; do
        t=$((t + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

json_field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }

# Polls until one short sipload run (the arguments after the first four) gets an answer from
# the system under test, whose process is $cur_pid: at most 20 tries 0.3 s apart, each bounded
# by $1 seconds, measuring $2 seconds with sipload's --timeout-ms $3 and --connect-timeout-ms
# $4. Status 1 when the process dies or nothing is answered. Needs SIPLOAD.
bench_await_answer() {
    local bound="$1" dur="$2" tmo="$3" ctmo="$4" i j
    shift 4
    for ((i = 0; i < 20; i++)); do
        kill -0 "$cur_pid" 2>/dev/null || return 1
        if j="$(timeout "$bound" "$SIPLOAD" "$@" --flows 1 --warmup 0 --duration "$dur" \
            --timeout-ms "$tmo" --connect-timeout-ms "$ctmo" 2>/dev/null)" &&
            [[ "$(json_field "$j" answered)" -gt 0 ]]; then
            return 0
        fi
        sleep 0.3
    done
    return 1
}

# Stops a process started with `setsid` (its own process group, e.g. Kamailio and the
# workers it forks): SIGTERM to the group, at most 10 s, then SIGKILL to what is left of it.
stop_group() {
    local pid="$1" i
    [[ -n "$pid" ]] || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "bench: pid $pid ignored SIGTERM for 10 s, killing its group" >&2
    fi
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# The socket kinds the port checks look at: TCP and UDP, and SCTP with BENCH_SS_SCTP=1 (only
# where the kernel has SCTP).
bench_ss_kinds() { echo "-Htlnu${BENCH_SS_SCTP:+S}"; }

# Waits (at most 10 s) until nothing listens on the given ports (the next system binds them).
await_ports_free() {
    local i filter="" p
    for p in "$@"; do filter+="${filter:+ or }sport = :$p"; done
    for ((i = 0; i < 100; i++)); do
        ss "$(bench_ss_kinds)" "( $filter )" | grep -q . || return 0
        sleep 0.1
    done
    return 1
}

# Refuses to start when something already listens on one of the ports.
require_ports_free() {
    local p
    for p in "$@"; do
        if ss "$(bench_ss_kinds)" "( sport = :$p )" | grep -q .; then
            echo "bench: something already listens on port $p: $(ss -Htlnup "( sport = :$p )" | head -2)" >&2
            return 1
        fi
    done
}

# Percent of wall time between $3 and $4 (date +%s.%N) that CPU time $1 jiffies took.
jiffies_pct() {
    awk -v b="$1" -v hz="$(getconf CLK_TCK)" -v t0="$2" -v t1="$3" \
        'BEGIN { v = 100 * b / hz / (t1 - t0); printf "%.0f", (v < 0 ? 0 : v) }'
}

# The relay's configuration used by relay-cpu.sh, latency.sh and multicore.sh, into file $1:
# UDP and TCP listeners on 127.0.0.1:$proxy_port, TLS on $proxy_tls_port with the certificate of
# bench_make_tls in $tls, one route for user "uas" to 127.0.0.1:$uas_port over transport $2;
# $3: more lines of that route (e.g. `stateless = true`), $4: more TOML after it (sections or
# listeners of the caller's own).
bench_relay_config() {
    cat >"$1" <<EOF
# Written by lab/bench/$(basename "$0").
[[listener]]
name = "udp"
transport = "udp"
addr = "127.0.0.1:$proxy_port"

[[listener]]
name = "tcp"
transport = "tcp"
addr = "127.0.0.1:$proxy_port"

[[listener]]
name = "tls"
transport = "tls"
addr = "127.0.0.1:$proxy_tls_port"
cert = "$tls/server.pem"
key = "$tls/server.key"

[tls]
ca_files = ["$tls/ca.pem"]

[[route]]
name = "uas"
user = "uas"
${3:-}
[[route.target]]
transport = "$2"
address = "127.0.0.1:$uas_port"

${4:-}
EOF
}

# The relays' UAS (`sipload serve`) on transport $1, on $load_core at 127.0.0.1:$uas_port (TLS
# with the certificate of bench_make_tls in $tls), its output in $2; sets uas_pid and waits at
# most 5 s until it listens, else dies naming $3 (the case).
bench_start_uas() {
    local i targs=()
    [[ "$1" == tls ]] && targs=(--cert "$tls/server.pem" --key "$tls/server.key")
    : >"$2"
    taskset -c "$load_core" "$SIPLOAD" serve --transport "$1" --listen "127.0.0.1:$uas_port" "${targs[@]}" >"$2" 2>&1 &
    uas_pid=$!
    for ((i = 0; i < 50; i++)); do
        grep -q listening "$2" && return 0
        kill -0 "$uas_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$2" >&2
    die "the UAS did not start for $3"
}

# The callgrind benches' binaries: BIN = $1 when given, else a release `sipwire` built here;
# SIPLOAD as set, else a release `sipload` built here (both in $target).
bench_pick_binaries() {
    if [[ -n "${1:-}" ]]; then
        BIN=$1
    else
        cargo build --release -p sipwire-gateway >&2
        BIN=$target/release/sipwire
    fi
    if [[ -z "${SIPLOAD:-}" ]]; then
        cargo build --release -p sipload >&2
        SIPLOAD=$target/release/sipload
    fi
}

# Starts `sipwire run` (binary $1; its arguments after `run` from $6 on) in its own process
# group pinned to CPUs $2, with state directory $3 and its output in $4; sets cur_pid and waits
# at most 10 s for `sipwire: ready`, else prints the output and dies naming $5.
bench_start_sipwire() {
    local bin="$1" cpus="$2" state="$3" log="$4" what="$5" i
    shift 5
    mkdir -p "$state"
    : >"$log"
    SIPWIRE_STATE_DIR="$state" SIPWIRE_LOG=warn setsid taskset -c "$cpus" "$bin" run "$@" >"$log" 2>&1 &
    cur_pid=$!
    for ((i = 0; i < 100; i++)); do
        grep -q '^sipwire: ready' "$log" && return 0
        kill -0 "$cur_pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^sipwire: ready' "$log" && return 0
    cat "$log" >&2
    die "$what did not start (log $log)"
}
