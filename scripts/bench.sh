#!/usr/bin/env bash
# The benchmarks in one command: build in release mode, make sure PostgreSQL, RabbitMQ and nginx
# are there, run every benchmark BENCH_REPEATS times on the embedded stores (SQLite and the
# in-process bus) and, where the benchmark supports it, on PostgreSQL and RabbitMQ, then write
# bench-results/<UTC time>/{results.json,table.md,*.svg} and print the table (DESIGN.md §5's
# budgets, each beside the anchor measured in the same run).
#
#   scripts/bench.sh                     # everything, 3 repeats (~1 h on 2 cores)
#   BENCH_QUICK=1 scripts/bench.sh       # small sizes, 1 repeat: proves the pipeline, not the budgets
#   BENCH_ONLY="tokens load" scripts/bench.sh
#
# Settings (environment): BENCH_REPEATS (3; 1 when quick), BENCH_ONLY (benchmarks, in order:
# anchors tokens authorize upload download tus load events), BENCH_STORES ("embedded postgres";
# postgres is dropped when PostgreSQL or RabbitMQ cannot be had), BENCH_POSTGRES_URL
# (postgres://postgres@127.0.0.1:5432/postgres), BENCH_AMQP_URL (amqp://guest:guest@127.0.0.1:5672/%2f),
# NGINX_BIN, BENCH_NO_BUILD (set: run what target/release already holds), and the benchmarks'
# own size variables (see README.md, "Performance").
#
# Binaries are copied into the results folder before the first run and run from there, so
# builds others start in the same tree during the run change nothing; the copies are removed at
# the end. Each run's output is kept in raw/<bench>.<store>.<repeat>.log, what it recorded in
# .jsonl and its exit code in .status; a failed run is reported, not fatal.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=${BENCH_QUICK:-}
[[ $quick == 0 || $quick == false ]] && quick=
if [[ -n $quick ]]; then
  repeats=${BENCH_REPEATS:-1}
  export BENCH_UPLOAD_BYTES=${BENCH_UPLOAD_BYTES:-$((128 << 20))}
  export BENCH_TUS_BYTES=${BENCH_TUS_BYTES:-1GiB}
  export BENCH_DOWNLOAD_BYTES=${BENCH_DOWNLOAD_BYTES:-$((128 << 20))}
  export BENCH_LOAD_SECONDS=${BENCH_LOAD_SECONDS:-3}
  export BENCH_CLIENTS=${BENCH_CLIENTS:-20}
  export BENCH_EVENTS_SECONDS=${BENCH_EVENTS_SECONDS:-2}
  export BENCH_EVENTS_BURST=${BENCH_EVENTS_BURST:-500}
  export BENCH_MEMBERS=${BENCH_MEMBERS:-5000}
  export BENCH_LEVEL_SECONDS=${BENCH_LEVEL_SECONDS:-1}
else
  repeats=${BENCH_REPEATS:-3}
fi
benches=${BENCH_ONLY:-anchors tokens authorize upload download tus load events}
stores=${BENCH_STORES:-embedded postgres}
postgres_url=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
amqp_url=${BENCH_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}

say() { echo "bench: $*" >&2; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() {
  local port=$1 seconds=$2
  for _ in $(seq "$seconds"); do
    answers "$port" && return 0
    sleep 1
  done
  return 1
}
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

# --- servers (as .ci/run starts them) ---
have_servers=yes
if [[ " $stores " == *" postgres "* ]]; then
  if ! answers 5432 && command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    say "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  wait_for 5432 60 || { say "PostgreSQL does not answer on 5432"; have_servers=; }
  if ! answers 5672 && command -v rabbitmq-server >/dev/null; then
    say "starting RabbitMQ"
    as_root rabbitmq-server -detached || true
  fi
  wait_for 5672 120 || { say "RabbitMQ does not answer on 5672"; have_servers=; }
  if [[ -z $have_servers ]]; then
    say "skipping the PostgreSQL + RabbitMQ runs"
    stores=${stores//postgres/}
  fi
fi
postgres_up=
answers 5432 && postgres_up=yes

# --- nginx, the upload and download anchor ---
nginx_bin=${NGINX_BIN:-/usr/sbin/nginx}
if [[ " $benches " == *" upload "* || " $benches " == *" download "* ]] && [[ ! -x $nginx_bin ]]; then
  say "installing nginx (nginx-light)"
  as_root apt-get install -y nginx-light >&2 ||
    { as_root apt-get update >&2 && as_root apt-get install -y nginx-light >&2; }
fi
export NGINX_BIN=$nginx_bin

# --- build (BENCH_NO_BUILD=1: take what target/release already holds) ---
if [[ -z ${BENCH_NO_BUILD:-} ]]; then
  say "building (release)"
  # One invocation, so the daemon and the benches share one feature set and one build of the
  # dependencies (built apart, the benches' dev-dependencies force a second release build).
  artifacts=$(cargo build --release --locked -p brokerd -p broker-tests --bins --benches \
    --message-format=json)
fi
# The bench executable of that name: from cargo's report of the build, else the newest built.
bench_executable() {
  if [[ -z ${BENCH_NO_BUILD:-} ]]; then
    jq -r --arg name "$1" \
      'select(.reason == "compiler-artifact" and .target.kind == ["bench"] and .target.name == $name) | .executable' \
      <<<"$artifacts"
  else
    find target/release/deps -maxdepth 1 -type f -executable -name "$1-*" ! -name '*.*' \
      -printf '%T@ %p\n' | sort -rn | head -n1 | cut -d' ' -f2-
  fi
}

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
out=$root/bench-results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out/raw" "$out/bin"
cp target/release/brokerd target/release/bench-report "$out/bin/"
for bench in $benches; do
  executable=$(bench_executable "$bench")
  [[ -n $executable && -x $executable ]] || { say "no executable for the bench $bench"; exit 1; }
  cp "$executable" "$out/bin/$bench"
done
trap 'rm -rf "$out/bin"' EXIT

jq -n --arg started "$started" --arg host "$(hostname)" --arg cores "$(nproc)" \
  --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg kernel "$(uname -r)" \
  --arg commit "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo '+changes')" \
  --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
  --arg nginx "$("$NGINX_BIN" -v 2>&1 || true)" --argjson repeats "$repeats" \
  --argjson quick "$([[ -n $quick ]] && echo true || echo false)" \
  --arg benches "$benches" --arg stores "$stores" \
  --arg sizes "$(env | grep '^BENCH_' | grep -v RESULTS_FILE | sort | tr '\n' ' ')" \
  '{started: $started, host: $host, cores: $cores, cpu: $cpu, kernel: $kernel,
    load_average: $load, commit: $commit, nginx: $nginx, repeats: $repeats, quick: $quick,
    benches: $benches, stores: $stores, settings: $sizes}' >"$out/meta.json"

# --- runs: the repeats outermost, so each repeat is one pass over everything ---
run() {
  local bench=$1 store=$2 repeat=$3
  local name=$out/raw/$bench.$store.$repeat
  say "run $repeat/$repeats: $bench ($store)"
  local status=0
  (
    cd "$root/tests"
    unset BROKER_TEST_DATABASE_URL BROKER_TEST_AMQP_URL BENCH_DATABASE CI
    if [[ $store == postgres ]]; then
      export BROKER_TEST_DATABASE_URL=$postgres_url BROKER_TEST_AMQP_URL=$amqp_url BENCH_DATABASE=postgres
    elif [[ $store == machine && -n $postgres_up ]]; then
      export BROKER_TEST_DATABASE_URL=$postgres_url
    fi
    BENCH_RESULTS_FILE=$name.jsonl BROKERD_BIN=$out/bin/brokerd "$out/bin/$bench" --bench
  ) > >(tee "$name.log") 2>&1 || status=$?
  echo "$status" >"$name.status"
  [[ $status == 0 ]] || say "$bench ($store) run $repeat failed with exit code $status; see $name.log"
}
for repeat in $(seq "$repeats"); do
  for bench in $benches; do
    case $bench in
      anchors) run anchors machine "$repeat" ;;
      # The upload, download and tus benchmarks run on the embedded stores only.
      upload | download | tus)
        if [[ " $stores " == *" embedded "* ]]; then run "$bench" embedded "$repeat"; fi
        ;;
      *) for store in $stores; do run "$bench" "$store" "$repeat"; done ;;
    esac
  done
done
sleep 1 # let tee finish writing the last log

"$out/bin/bench-report" "$out"
say "results in ${out#"$root"/}: results.json, table.md, raw/ and the plots (*.svg)"
