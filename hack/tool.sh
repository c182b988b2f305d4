#!/usr/bin/env bash
# tool.sh NAME [OS/ARCH]: make sure bin/NAME exists, taking it from the
# cache outside the clone (~/.cache/sluice/<tool>/<version>/) or building it
# from hack/tools (or with go install) and filling the cache. Building
# kube-apiserver cold takes minutes on two cores, so the cache matters.
# With OS/ARCH (for the images: kubectl, helm) the binary is cross-compiled
# statically into bin/<os>-<arch>/NAME.
#
# tool.sh NAME NAME...: the same for several tools, built in two queues at
# once (the Kubernetes module's binaries one after the other, sharing the
# build cache; go install tools beside them), with a line per binary saying
# the time so far and an estimate of what is left.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.0
CONTROLLER_TOOLS_VERSION=v0.23.0
GOLANGCI_LINT_VERSION=v2.15.0
KWOK_VERSION=v0.8.0
GOVULNCHECK_VERSION=v1.9.0
# The Go vulnerability database as a Go module: its data/osv holds every
# report; indexdb, built from the same module, indexes them for govulncheck.
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
# FLAGGER_VERSION is the Flagger the takeover end-to-end tests build and run.
FLAGGER_VERSION=v1.44.0
HELM_VERSION=v4.3.2 # keep equal to hack/tools/helm/go.mod

# ensure NAME [OS/ARCH] makes bin[/<os>-<arch>]/NAME exist.
ensure() {
  local name=$1 platform=${2:-} version bin cache start out minor ld tmp
  case "$name" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl) version=$KUBE_VERSION ;;
    helm) version=$HELM_VERSION ;;
    etcd) version=$ETCD_VERSION ;;
    controller-gen) version=$CONTROLLER_TOOLS_VERSION ;;
    golangci-lint) version=$GOLANGCI_LINT_VERSION ;;
    kwok) version=$KWOK_VERSION ;;
    flagger) version=$FLAGGER_VERSION ;;
    govulncheck) version=$GOVULNCHECK_VERSION ;;
    indexdb) version=$VULNDB_VERSION ;;
    *) echo "tool.sh: unknown tool $name" >&2; return 2 ;;
  esac

  bin="$root/bin"
  cache="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}/$name/$version"
  if [ -n "$platform" ]; then
    export GOOS=${platform%%/*} GOARCH=${platform#*/} CGO_ENABLED=0
    bin="$bin/$GOOS-$GOARCH"
    cache="$cache/$GOOS-$GOARCH"
  fi
  mkdir -p "$bin"

  # A stamp beside the binary records the version it was built from, so a
  # version bump rebuilds instead of reusing a stale bin/.
  if [ -x "$bin/$name" ] && [ "$(cat "$bin/.$name.version" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  if [ -x "$cache/$name" ]; then
    cp "$cache/$name" "$bin/$name.tmp" && mv "$bin/$name.tmp" "$bin/$name"
    echo "$version" > "$bin/.$name.version"
    return 0
  fi
  [ -z "${CHECK_ONLY:-}" ] || return 1

  echo "building $name $version${platform:+ for $platform} (cached afterwards in $cache)" >&2
  start=$(date +%s)
  out="$bin/$name.tmp"
  rm -f "$out"
  case "$name" in
    kube-*|kubectl)
      minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
      ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
      ld="$ld -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
      ld="$ld -X k8s.io/component-base/version.gitTreeState=clean"
      (cd "$root/hack/tools" && go build -trimpath -ldflags "$ld" -o "$out" "k8s.io/kubernetes/cmd/$name") ;;
    etcd)
      (cd "$root/hack/tools" && go build -trimpath -ldflags "-s -w" -o "$out" go.etcd.io/etcd/server/v3) ;;
    helm)
      ld="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
      (cd "$root/hack/tools/helm" && go build -trimpath -ldflags "$ld" -o "$out" helm.sh/helm/v4/cmd/helm) ;;
    controller-gen)
      (cd "$root/hack/tools" && go build -trimpath -o "$out" sigs.k8s.io/controller-tools/cmd/controller-gen) ;;
    golangci-lint)
      tmp=$(mktemp -d)
      GOBIN="$tmp" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
      mv "$tmp/golangci-lint" "$out"; rmdir "$tmp" ;;
    kwok)
      tmp=$(mktemp -d)
      GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$version"
      mv "$tmp/kwok" "$out"; rmdir "$tmp" ;;
    govulncheck)
      tmp=$(mktemp -d)
      GOBIN="$tmp" go install "golang.org/x/vuln/cmd/govulncheck@$version"
      mv "$tmp/govulncheck" "$out"; rmdir "$tmp" ;;
    indexdb)
      # Outside any module, so that Sluice's go.mod stays as it is.
      dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$version" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
      (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$out" ./cmd/indexdb) ;;
    flagger)
      # Flagger itself, for the takeover end-to-end tests: built from its
      # module on the Go proxy with its own go.mod and go.sum. The module
      # cache is read-only, so the tree is copied to a writable directory.
      tmp=$(mktemp -d)
      dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/fluxcd/flagger@$version" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
      [ -d "$dir" ] || { echo "tool.sh: flagger $version: module not downloaded" >&2; return 1; }
      cp -r "$dir" "$tmp/src" && chmod -R u+w "$tmp/src"
      (cd "$tmp/src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out" ./cmd/flagger)
      rm -rf "$tmp" ;;
  esac
  # Checked here too: under `ensure || ...` a failed build does not stop bash.
  [ -f "$out" ] || { echo "tool.sh: building $name failed" >&2; return 1; }
  mv "$out" "$bin/$name"
  echo "$version" > "$bin/.$name.version"
  mkdir -p "$cache" && cp "$bin/$name" "$cache/$name.tmp" && mv "$cache/$name.tmp" "$cache/$name"
  echo "built $name $version${platform:+ for $platform} in $(( $(date +%s) - start ))s" >&2
  [ -z "${TOOL_STATE:-}" ] || echo "$(( $(date +%s) - start ))" > "$TOOL_STATE/built-$name"
}

# Typical cold build times on 2 cores, in seconds (DEVELOPMENT.md's table),
# for the estimates; report scales them by how this machine does.
estimate() {
  case "$1" in
    kube-apiserver) echo 220 ;; kube-controller-manager) echo 130 ;; kube-scheduler) echo 30 ;;
    etcd) echo 40 ;; controller-gen) echo 15 ;; kwok) echo 240 ;; golangci-lint) echo 180 ;;
    kubectl) echo 100 ;; flagger) echo 420 ;;
    *) echo 120 ;;
  esac
}

# missing NAME...: the tools that neither bin/ nor the cache has.
missing() {
  local n
  for n in "$@"; do
    CHECK_ONLY=1 ensure "$n" || echo "$n"
  done
}

if [ $# -eq 0 ]; then
  echo "usage: tool.sh NAME [OS/ARCH] | tool.sh NAME NAME..." >&2; exit 2
fi
if [ $# -eq 1 ] || { [ $# -eq 2 ] && [[ "$2" == */* ]]; }; then
  ensure "$@"
  exit
fi

mapfile -t todo < <(missing "$@")
[ ${#todo[@]} -gt 0 ] || exit 0
TOOL_STATE=$(mktemp -d); export TOOL_STATE
trap 'rm -rf "$TOOL_STATE"' EXIT
queue_a=() queue_b=() total=0
for n in "${todo[@]}"; do
  case "$n" in kwok|golangci-lint|flagger) queue_b+=("$n") ;; *) queue_a+=("$n") ;; esac
  total=$(( total + $(estimate "$n") ))
done
echo "tool.sh: building ${todo[*]} once (cached in ${SLUICE_CACHE:-~/.cache/sluice}); about $(( (total + 59) / 60 )) min of CPU on 2 cores, less in parallel" >&2
began=$(date +%s)

# run_queue Q NAME...: builds the names in order, then reports.
run_queue() {
  local q=$1 n left; shift
  left=0; for n in "$@"; do left=$(( left + $(estimate "$n") )); done
  echo "$left" > "$TOOL_STATE/left-$q"
  for n in "$@"; do
    ensure "$n" 2> >(grep -v '^built ' >&2) || return 1
    left=$(( left - $(estimate "$n") )); echo "$left" > "$TOOL_STATE/left-$q"
    report "$n"
  done
}

# report NAME prints one line for a finished binary: its time, the time so
# far and what is left, the estimates scaled by how this machine did so far.
report() {
  local n=$1 took elapsed est_done=0 act_done=0 f a b left
  took=$(cat "$TOOL_STATE/built-$n" 2>/dev/null || echo 0)
  elapsed=$(( $(date +%s) - began ))
  for f in "$TOOL_STATE"/built-*; do
    [ -e "$f" ] || continue
    est_done=$(( est_done + $(estimate "${f##*/built-}") )); act_done=$(( act_done + $(cat "$f") ))
  done
  a=$(cat "$TOOL_STATE/left-a" 2>/dev/null || echo 0); b=$(cat "$TOOL_STATE/left-b" 2>/dev/null || echo 0)
  left=$(( a > b ? a : b ))
  [ "$est_done" -gt 0 ] && left=$(( left * act_done / est_done ))
  printf 'tool.sh: built %-24s in %4ss | %2dm%02ds so far | about %dm%02ds left\n' "$n" "$took" $(( elapsed / 60 )) $(( elapsed % 60 )) $(( left / 60 )) $(( left % 60 )) >&2
}

pid_b=""
if [ ${#queue_b[@]} -gt 0 ]; then
  run_queue b "${queue_b[@]}" & pid_b=$!
fi
status=0
[ ${#queue_a[@]} -eq 0 ] || run_queue a "${queue_a[@]}" || status=1
[ -z "$pid_b" ] || wait "$pid_b" || status=1
[ $status -eq 0 ] && echo "tool.sh: done in $(( ($(date +%s) - began) / 60 ))m$(( ($(date +%s) - began) % 60 ))s" >&2
exit $status
