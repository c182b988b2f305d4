#!/usr/bin/env bash
# install-deps.sh: install what a fresh Debian machine lacks to build and
# test Sluice. Only Debian's packages and the Go module proxy are used.
set -euo pipefail

need=()
command -v make >/dev/null 2>&1 || need+=(make)
command -v git >/dev/null 2>&1 || need+=(git)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus) # the metric tests run a real server

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "install-deps: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    echo "install-deps: go is at /usr/local/go/bin; add it to PATH" >&2
  else
    echo "install-deps: Go 1.26 is required and not installed" >&2
  fi
  exit 1
fi

# Modules for the main module and the tool module, so that later steps
# report build errors rather than download errors.
go mod download
(cd hack/tools && go mod download)

# Flagger's module, outside Sluice's go.mod: the compatibility tests install
# its CRDs (internal/testenv, FlaggerVersion) and read its source. An empty
# directory keeps go from consulting or changing any go.mod.
(cd "$(mktemp -d)" && GOFLAGS=-mod=mod GOWORK=off go mod download github.com/fluxcd/flagger@v1.44.0)
