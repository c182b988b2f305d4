#!/usr/bin/env bash
# tool.sh NAME: make sure bin/NAME exists, taking it from the cache outside
# the clone (~/.cache/sluice/<version>/) or building it from hack/tools (or
# with go install) and filling the cache. Building kube-apiserver cold takes
# minutes on two cores, so the cache matters.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: tool.sh NAME}

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.0
CONTROLLER_TOOLS_VERSION=v0.23.0
GOLANGCI_LINT_VERSION=v2.15.0
KWOK_VERSION=v0.8.0
GOVULNCHECK_VERSION=v1.9.0
# The Go vulnerability database as a Go module: its data/osv holds every
# report; indexdb, built from the same module, indexes them for govulncheck.
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

case "$name" in
  kube-apiserver|kube-controller-manager|kube-scheduler|kubectl) version=$KUBE_VERSION ;;
  etcd) version=$ETCD_VERSION ;;
  controller-gen) version=$CONTROLLER_TOOLS_VERSION ;;
  golangci-lint) version=$GOLANGCI_LINT_VERSION ;;
  kwok) version=$KWOK_VERSION ;;
  govulncheck) version=$GOVULNCHECK_VERSION ;;
  indexdb) version=$VULNDB_VERSION ;;
  *) echo "tool.sh: unknown tool $name" >&2; exit 2 ;;
esac

bin="$root/bin"
cache="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}/$name/$version"
mkdir -p "$bin"

# A stamp beside the binary records the version it was built from, so a
# version bump rebuilds instead of reusing a stale bin/.
if [ -x "$bin/$name" ] && [ "$(cat "$bin/.$name.version" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
if [ -x "$cache/$name" ]; then
  cp "$cache/$name" "$bin/$name.tmp" && mv "$bin/$name.tmp" "$bin/$name"
  echo "$version" > "$bin/.$name.version"
  exit 0
fi

echo "building $name $version (cached afterwards in $cache)" >&2
start=$(date +%s)
out="$bin/$name.tmp"
case "$name" in
  kube-*|kubectl)
    minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
    ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
    ld="$ld -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
    ld="$ld -X k8s.io/component-base/version.gitTreeState=clean"
    (cd "$root/hack/tools" && go build -trimpath -ldflags "$ld" -o "$out" "k8s.io/kubernetes/cmd/$name") ;;
  etcd)
    (cd "$root/hack/tools" && go build -trimpath -ldflags "-s -w" -o "$out" go.etcd.io/etcd/server/v3) ;;
  controller-gen)
    (cd "$root/hack/tools" && go build -trimpath -o "$out" sigs.k8s.io/controller-tools/cmd/controller-gen) ;;
  golangci-lint)
    tmp=$(mktemp -d)
    GOBIN="$tmp" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
    mv "$tmp/golangci-lint" "$out"; rmdir "$tmp" ;;
  govulncheck)
    tmp=$(mktemp -d)
    GOBIN="$tmp" go install "golang.org/x/vuln/cmd/govulncheck@$version"
    mv "$tmp/govulncheck" "$out"; rmdir "$tmp" ;;
  indexdb)
    # Outside any module, so that Sluice's go.mod stays as it is.
    dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$out" ./cmd/indexdb) ;;
  kwok)
    tmp=$(mktemp -d)
    GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$version"
    mv "$tmp/kwok" "$out"; rmdir "$tmp" ;;
esac
mv "$out" "$bin/$name"
echo "$version" > "$bin/.$name.version"
mkdir -p "$cache" && cp "$bin/$name" "$cache/$name.tmp" && mv "$cache/$name.tmp" "$cache/$name"
echo "built $name $version in $(( $(date +%s) - start ))s" >&2
