#!/usr/bin/env bash
# kademe local stack: a Prefect server, the process work pool, the deployments of prefect.yaml, one
# global concurrency limit per GPU (gpu-<i>, limit 1) and one worker per GPU. Everything on 127.0.0.1.
#
# Usage: deployments/local-stack.sh up|down|status|setup
#   up      start the server (unless PREFECT_API_URL is set), run setup, start the workers
#   down    stop exactly the processes `up` recorded (TERM, wait, KILL); an external server stays up
#   status  the server URL and health, each recorded process alive or not (exit 1 if anything is down)
#   setup   only the work pool, the concurrency limits and `prefect deploy --all`, against PREFECT_API_URL
#
# Environment:
#   PREFECT_API_URL       use this server instead of starting one
#   KADEME_PREFECT_PORT   port of the started server (default 4200)
#   KADEME_STACK_DIR      pids, logs and the server's database (default <repo>/.kademe-stack)
#   KADEME_WORK_POOL      the process work pool (default kademe-gpu)
#   KADEME_GPUS           GPUs to spread workers over (default: `nvidia-smi -L`, else KADEME_WORKERS)
#   KADEME_WORKERS        workers to start (default: the number of GPUs, at least 1); worker i gets
#                         CUDA_VISIBLE_DEVICES=i mod GPUs and KADEME_GPU_SLOT=gpu-<that GPU>
#   KADEME_START_TIMEOUT  seconds to wait for the server's /api/health (default 120)
#   KADEME_STOP_TIMEOUT   seconds between TERM and KILL (default 10)
#   KADEME_PYTHON         python used for health checks (default python3)
#   PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED, PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD,
#   PREFECT_SERVER_EVENTS_RETENTION_PERIOD
#                         the started server's retention (Prefect >= 3.6.29; default events,flow_runs,
#                         P14D and P7D: flow runs with their task runs, logs and artifacts 14 days after
#                         they end, events 7 days). See deployments/README.md ("Prefect's database").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${KADEME_STACK_DIR:-$ROOT/.kademe-stack}
[[ $STATE == /* ]] || STATE=$PWD/$STATE
PORT=${KADEME_PREFECT_PORT:-4200}
DEFAULT_POOL=kademe-gpu  # the pool named in prefect.yaml
POOL=${KADEME_WORK_POOL:-$DEFAULT_POOL}
PY=${KADEME_PYTHON:-python3}
START_TIMEOUT=${KADEME_START_TIMEOUT:-120}
STOP_TIMEOUT=${KADEME_STOP_TIMEOUT:-10}

say() { printf 'local-stack: %s\n' "$*"; }
die() { printf 'local-stack: error: %s\n' "$*" >&2; exit 1; }

# healthy API_URL: 0 when GET API_URL/health answers within 2 s (no proxy: everything is local).
healthy() {
  "$PY" - "$1/health" >/dev/null 2>&1 <<'EOF'
import sys, urllib.request
urllib.request.build_opener(urllib.request.ProxyHandler({})).open(sys.argv[1], timeout=2).read()
EOF
}

# alive PID: running and not a zombie (a reaped-late child still answers kill -0).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  if [[ -r /proc/$1/stat ]]; then
    local stat rest
    stat=$(<"/proc/$1/stat") || return 1
    rest=${stat##*) }
    [[ ${rest%% *} != Z ]]
  fi
}

# ours PID: the pid still belongs to a prefect process (guards against a recycled pid).
ours() {
  local cmd
  if [[ -r /proc/$1/cmdline ]]; then cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true)
  else cmd=$(ps -o args= -p "$1" 2>/dev/null || true); fi
  [[ $cmd == *prefect* ]]
}

# launch NAME CMD...: start CMD detached in its own session/process group, log to NAME.log, record NAME.pid.
launch() {
  local name=$1; shift
  if command -v setsid >/dev/null 2>&1; then
    setsid "$@" >>"$STATE/$name.log" 2>&1 </dev/null &
  else  # macOS: job control gives the job its own process group
    set -m; nohup "$@" >>"$STATE/$name.log" 2>&1 </dev/null & set +m
  fi
  echo $! >"$STATE/$name.pid"
}

tail_log() {
  if [[ -f $STATE/$1.log ]]; then tail -n "${2:-20}" "$STATE/$1.log" | sed 's/^/    /' >&2; fi
}

api_url() {
  if [[ -n ${PREFECT_API_URL:-} ]]; then echo "${PREFECT_API_URL%/}"
  elif [[ -f $STATE/server.url ]]; then cat "$STATE/server.url"
  else echo "http://127.0.0.1:$PORT/api"; fi
}

start_server() {
  if [[ -n ${PREFECT_API_URL:-} ]]; then
    healthy "$(api_url)" || die "PREFECT_API_URL=$PREFECT_API_URL does not answer on /health. Start that server, or unset PREFECT_API_URL to let this script start one."
    api_url >"$STATE/server.url"
    say "using the server at $(api_url) (PREFECT_API_URL); it will not be stopped by down"
    return
  fi
  local url="http://127.0.0.1:$PORT/api" pid
  if [[ -f $STATE/server.pid ]] && alive "$(cat "$STATE/server.pid")" && healthy "$url"; then
    say "server already running: $url (pid $(cat "$STATE/server.pid"))"; return
  fi
  if healthy "$url"; then die "something else already answers on $url. Stop it, pick another KADEME_PREFECT_PORT, or set PREFECT_API_URL=$url to use it."; fi
  echo "$url" >"$STATE/server.url"
  # The database lives in the state dir, apart from ~/.prefect, unless one is configured.
  local db=${PREFECT_SERVER_DATABASE_CONNECTION_URL:-${PREFECT_API_DATABASE_CONNECTION_URL:-sqlite+aiosqlite:///$STATE/prefect.db}}
  # Retention (issue 29): without it every nightly run's flow run, task runs and logs stay forever.
  PREFECT_SERVER_DATABASE_CONNECTION_URL=$db PREFECT_SERVER_ANALYTICS_ENABLED=false \
  PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED=${PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED:-events,flow_runs} \
  PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD=${PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD:-P14D} \
  PREFECT_SERVER_EVENTS_RETENTION_PERIOD=${PREFECT_SERVER_EVENTS_RETENTION_PERIOD:-P7D} \
    launch server prefect server start --host 127.0.0.1 --port "$PORT"
  pid=$(cat "$STATE/server.pid")
  say "server starting: $url (pid $pid, log $STATE/server.log)"
  local waited=0
  until healthy "$url"; do
    alive "$pid" || { tail_log server; die "the server exited before answering; its log is above ($STATE/server.log)."; }
    (( waited < START_TIMEOUT * 2 )) || { tail_log server; die "no answer from $url/health after ${START_TIMEOUT}s; raise KADEME_START_TIMEOUT or read $STATE/server.log."; }
    sleep 0.5; waited=$((waited + 1))
  done
  say "server healthy after ~$((waited / 2))s"
}

gpu_count() {
  local n=${KADEME_GPUS:-}
  if [[ -z $n ]] && command -v nvidia-smi >/dev/null 2>&1; then n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi
  [[ -n $n && $n -gt 0 ]] || n=${KADEME_WORKERS:-1}
  echo "$n"
}

# run_cli WHAT CMD...: a prefect CLI call, its output in setup.log, shown only when it fails.
run_cli() {
  local what=$1; shift
  echo "\$ $*" >>"$STATE/setup.log"
  "$@" >>"$STATE/setup.log" 2>&1 || { tail_log setup 30; die "$what failed (full output in $STATE/setup.log)."; }
}

setup() {
  export PREFECT_API_URL
  PREFECT_API_URL=$(api_url)
  healthy "$PREFECT_API_URL" || die "no Prefect server answers at $PREFECT_API_URL. Run '$0 up', or set PREFECT_API_URL."
  if ! prefect work-pool inspect "$POOL" >/dev/null 2>&1; then
    run_cli "creating work pool $POOL" prefect work-pool create "$POOL" --type process
  fi
  local gpus i
  gpus=$(gpu_count)
  for ((i = 0; i < gpus; i++)); do
    prefect gcl inspect "gpu-$i" >/dev/null 2>&1 || run_cli "creating concurrency limit gpu-$i" prefect gcl create "gpu-$i" --limit 1
  done
  # Pull steps read KADEME_PROJECT_DIR on the worker; deploying needs only the flows importable from ROOT.
  # `deploy --all` ignores CLI options such as --pool (Prefect 3.9 warns and goes on with prefect.yaml's
  # pool), so another pool is set one deployment at a time.
  if [[ $POOL == "$DEFAULT_POOL" ]]; then
    (cd "$ROOT" && run_cli "prefect deploy --all" prefect --no-prompt deploy --all)
  else
    local name
    while read -r name; do
      (cd "$ROOT" && run_cli "prefect deploy --name $name" prefect --no-prompt deploy --name "$name" --pool "$POOL")
    done < <(sed -n 's/^  - name: *//p' "$ROOT/prefect.yaml")
  fi
  say "work pool $POOL, limits gpu-0..gpu-$((gpus - 1)), deployments of $ROOT/prefect.yaml registered at $PREFECT_API_URL"
}

start_workers() {
  local gpus workers i gpu pid
  gpus=$(gpu_count)
  workers=${KADEME_WORKERS:-$gpus}
  (( workers >= 1 )) || die "KADEME_WORKERS must be at least 1 (got $workers)."
  for ((i = 0; i < workers; i++)); do
    if [[ -f $STATE/worker-$i.pid ]] && alive "$(cat "$STATE/worker-$i.pid")"; then
      say "worker-$i already running (pid $(cat "$STATE/worker-$i.pid"))"; continue
    fi
    gpu=$((i % gpus))
    echo "gpu-$gpu" >"$STATE/worker-$i.slot"
    CUDA_VISIBLE_DEVICES=$gpu KADEME_GPU_SLOT=gpu-$gpu KADEME_PROJECT_DIR=$ROOT PREFECT_API_URL=$PREFECT_API_URL \
      launch "worker-$i" prefect worker start --pool "$POOL" --name "kademe-${HOSTNAME:-local}-$i"
    pid=$(cat "$STATE/worker-$i.pid")
    say "worker-$i started: pid $pid, CUDA_VISIBLE_DEVICES=$gpu, KADEME_GPU_SLOT=gpu-$gpu, log $STATE/worker-$i.log"
  done
  sleep 2
  for ((i = 0; i < workers; i++)); do
    alive "$(cat "$STATE/worker-$i.pid")" || { tail_log "worker-$i"; die "worker-$i exited at start; its log is above."; }
  done
}

# stop NAME...: TERM each recorded process group, wait up to STOP_TIMEOUT for all of them, then KILL
# what is left; forget the pids. A Prefect 3.9 worker answers TERM with "Sending SIGINT to the process
# worker" and, idle or not, has not exited within 30 s in our runs: for workers the KILL is the norm.
stop() {
  local name pid i waited=0 pids=() names=()
  for name in "$@"; do
    [[ -f $STATE/$name.pid ]] || continue
    pid=$(cat "$STATE/$name.pid")
    if alive "$pid" && ours "$pid"; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$name")
    elif alive "$pid"; then
      say "$name: pid $pid is no longer a prefect process; left alone"
    fi
    rm -f "$STATE/$name.pid" "$STATE/$name.slot"
  done
  (( ${#pids[@]} )) || return 0
  while (( waited < STOP_TIMEOUT * 4 )); do
    for pid in "${pids[@]}"; do alive "$pid" && break; done
    alive "$pid" || break
    sleep 0.25; waited=$((waited + 1))
  done
  for i in "${!pids[@]}"; do
    pid=${pids[$i]}
    if alive "$pid"; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      say "${names[$i]} killed after ${STOP_TIMEOUT}s (pid $pid)"
    else
      say "${names[$i]} stopped (pid $pid)"
    fi
  done
}

down() {
  local f url workers=()
  for f in "$STATE"/worker-*.pid; do
    [[ -e $f ]] || continue
    workers+=("$(basename "$f" .pid)")
  done
  (( ${#workers[@]} )) && stop "${workers[@]}"
  if [[ -f $STATE/server.pid ]]; then
    url=$(cat "$STATE/server.url" 2>/dev/null || echo "http://127.0.0.1:$PORT/api")
    stop server
    local waited=0
    while healthy "$url" && (( waited < STOP_TIMEOUT * 2 )); do sleep 0.5; waited=$((waited + 1)); done
    if healthy "$url"; then die "$url still answers after stopping the recorded server; another process serves that port."; fi
  fi
  rm -f "$STATE/server.url"
  say "down (logs and the database stay in $STATE)"
}

status() {
  local url ok=0 f pid name
  url=$(api_url)
  if healthy "$url"; then say "server $url: healthy"; else say "server $url: not answering"; ok=1; fi
  if [[ -f $STATE/server.pid ]]; then
    pid=$(cat "$STATE/server.pid")
    if alive "$pid"; then say "server pid $pid: alive"; else say "server pid $pid: dead"; ok=1; fi
  fi
  for f in "$STATE"/worker-*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid); pid=$(cat "$f")
    if alive "$pid"; then say "$name pid $pid ($(cat "$STATE/$name.slot" 2>/dev/null || echo '?')): alive"
    else say "$name pid $pid: dead (log $STATE/$name.log)"; ok=1; fi
  done
  [[ -e $STATE/server.pid || -n $(compgen -G "$STATE/worker-*.pid" || true) ]] || { say "nothing recorded in $STATE"; ok=1; }
  return $ok
}

case ${1:-} in
  up) mkdir -p "$STATE"; start_server; setup; start_workers; say "up: $(api_url) (UI: $(api_url | sed 's#/api$##'))" ;;
  down) down ;;
  status) status ;;
  setup) mkdir -p "$STATE"; setup ;;
  *) echo "usage: $0 up|down|status|setup" >&2; exit 2 ;;
esac
